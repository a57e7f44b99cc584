"""Liveness and readiness probes, and what the frontend needs to know: the site's configuration and the caller."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import __version__
from ...config import Settings
from ...errors import CODES, StagingError
from ..deps import IdentityDep, ServiceDep
from ..schemas import LifetimeRules, Me, SiteConfig

router = APIRouter()


@router.get("/healthz", tags=["health"], summary="The process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], summary="Started, and the job database is reachable")
async def readyz(request: Request) -> JSONResponse:
    """503 with the reason (``database_unavailable``, ``schema_not_current``) until the service is ready."""
    try:
        runtime = request.app.state.startup.check()
        await run_in_threadpool(runtime.service.ping_database)
    except StagingError as problem:
        return JSONResponse(problem.to_dict(), status_code=problem.status_code)
    except Exception:
        down = StagingError("database_unavailable", "the job database is unavailable")
        return JSONResponse(down.to_dict(), status_code=down.status_code)
    return JSONResponse({"status": "ready"})


@router.get("/api/v1/config", tags=["config"], response_model=SiteConfig, summary="Methods and storage roots")
def site_config(service: ServiceDep) -> SiteConfig:
    return SiteConfig(
        version=__version__,
        methods=service.methods.describe(),
        storage_roots=[str(root) for root in service.roots.configured],
        unavailable_methods=service.methods.unavailable,
        auth_mode=service.settings.auth_mode,
        file_tool_enabled=service.settings.enable_file_tool,
        file_tool_max_bytes=service.settings.file_tool_max_bytes,
        error_codes={code: entry.meaning for code, entry in CODES.items()},
        dids=bool(service.settings.rucio_url),
        rucio_rse=service.settings.rucio_rse if service.settings.rucio_url else None,
        lifetimes=LifetimeRules(
            default_seconds=int(service.settings.default_lifetime.total_seconds()),
            max_seconds=int(service.settings.max_lifetime.total_seconds()),
            unlimited_for_everyone=service.settings.allow_unlimited_lifetime,
        ),
        quota_held_bytes=service.settings.quota_held_bytes_per_user or None,
        jupyter_workdir=_jupyter_workdir(service.settings, service.methods.enabled),
    )


@router.get("/api/v1/me", tags=["config"], response_model=Me, summary="Who the caller is")
def me(identity: IdentityDep) -> Me:
    return Me(
        username=identity.username,
        authenticated=identity.authenticated,
        is_admin=identity.is_admin,
        admin_tools=identity.may_administer,
        groups=sorted(identity.groups),
    )


def _jupyter_workdir(settings: Settings, enabled: list[str]) -> str | None:
    return settings.jupyter_workdir.strip("/") if "jupyter_copy" in enabled else None
