"""What users hold: staged data not yet released, against the quota on what is held."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..deps import IdentityDep, ServiceDep
from ..schemas import Usage

router = APIRouter(prefix="/api/v1", tags=["lifetimes"])


@router.get("/usage", response_model=Usage)
def usage(
    service: ServiceDep,
    identity: IdentityDep,
    username: Annotated[str | None, Query(description="Whose usage (admins: any user; default: the caller)")] = None,
) -> Usage:
    """Bytes and files the user holds, by method, and what expires in the next 24 hours."""
    return Usage.of(service.usage(username, identity))


@router.get("/usage/users", response_model=list[Usage])
def usage_by_user(service: ServiceDep, identity: IdentityDep) -> list[Usage]:
    """Every user who holds staged data, with their usage (admins)."""
    return [Usage.of(row) for row in service.usage_by_user(identity)]
