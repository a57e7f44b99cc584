"""Browsing the storage roots (read-only), for choosing a source."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...listing import list_path, list_roots
from ..deps import IdentityDep, ServiceDep
from ..schemas import ErrorBody, StorageListing

router = APIRouter(prefix="/api/v1", tags=["storage"])


@router.get(
    "/storage",
    response_model=StorageListing,
    responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    summary="List a storage folder",
)
def browse(
    service: ServiceDep,
    identity: IdentityDep,
    path: Annotated[str, Query(max_length=4096, description="A folder or file, as local_path_on_storage")] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> StorageListing:
    """Without ``path``, the storage roots; with a folder, its entries (folders first); with a file, that file.

    Paths are checked as staging sources are: nothing outside the roots, nothing the caller's groups may not read.
    """
    if path == "":
        listing = list_roots(service.roots, identity.read_groups)
    else:
        listing = list_path(service.roots, path, identity.read_groups, limit)
    return StorageListing.of(listing)
