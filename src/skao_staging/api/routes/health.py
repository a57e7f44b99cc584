"""Liveness and readiness probes, and the site configuration the frontend needs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import __version__
from ...errors import StagingError
from ..deps import ServiceDep
from ..schemas import SiteConfig

router = APIRouter()


@router.get("/healthz", tags=["health"], summary="The process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], summary="The job database is reachable")
async def readyz(service: ServiceDep) -> JSONResponse:
    try:
        await run_in_threadpool(service.db.ping)
    except Exception:
        error = StagingError("database_unavailable", "the job database is unavailable")
        return JSONResponse(error.to_dict(), status_code=error.status_code)
    return JSONResponse({"status": "ready"})


@router.get("/api/v1/config", tags=["config"], response_model=SiteConfig, summary="Methods and storage roots")
def site_config(service: ServiceDep) -> SiteConfig:
    return SiteConfig(
        version=__version__,
        methods=service.methods.describe(),
        storage_roots=[str(root) for root in service.roots.configured],
        unavailable_methods=service.methods.unavailable,
    )
