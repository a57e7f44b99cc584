"""The Rucio catalogue for choosing a source: search DIDs, and what one holds before it is staged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from ..deps import IdentityDep, ServiceDep
from ..schemas import DidFound, DidInfo, DidPage

router = APIRouter(prefix="/api/v1", tags=["dids"])


@router.get("/dids", response_model=DidPage, summary="Search DIDs of a scope by name")
async def search_dids(
    service: ServiceDep,
    identity: IdentityDep,
    scope: Annotated[str, Query(min_length=1, max_length=25, description="The scope to search")],
    name: Annotated[str, Query(max_length=250, description="A name pattern; * matches anything")] = "*",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DidPage:
    found = await run_in_threadpool(service.search_dids, scope, name, limit, offset, identity)
    return DidPage(dids=[DidFound(did=str(did), type=kind) for did, kind in found], limit=limit, offset=offset)


@router.get("/dids/{scope}/{name:path}", response_model=DidInfo, summary="What a DID holds, and whether it is here")
async def describe_did(scope: str, name: str, service: ServiceDep, identity: IdentityDep) -> DidInfo:
    summary = await run_in_threadpool(service.describe_did, f"{scope}:{name}", identity)
    return DidInfo(
        did=str(summary.did),
        type=summary.type,
        files=summary.files,
        bytes=summary.bytes,
        files_at_site=summary.files_at_site,
        at_site=summary.files > 0 and summary.files_at_site == summary.files,
    )
