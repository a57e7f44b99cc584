"""Every error answer is JSON ``{"detail": ..., "code": ...}``; nothing internal leaks."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import StagingError
from ..items import StageItem
from ..logs import get_logger
from .deps import service_of

log = get_logger("api")
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    401: "unauthenticated",
    403: "forbidden",
    413: "body_too_large",
}
RECORDED_ROUTES = {"stage_data"}  # routes whose malformed requests are recorded as failed jobs


def _readable(errors: list[Any]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(item) for item in error.get("loc", ()) if item != "body")
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg")))
    return "; ".join(parts) or "the request is malformed"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StagingError)
    async def staging_error(request: Request, exc: StagingError) -> JSONResponse:
        if exc.status_code in (401, 403):
            client = request.client.host if request.client else "?"
            log.warning(
                "denied %s %s from %s: code=%s %s", request.method, request.url.path, client, exc.code, exc.detail
            )
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = StagingError("invalid_request", _readable(list(exc.errors())))
        route = request.scope.get("route")
        if getattr(route, "name", None) in RECORDED_ROUTES:
            await run_in_threadpool(_record, request, error)
        return JSONResponse(error.to_dict(), status_code=error.status_code)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code)
        if code is None:  # e.g. Starlette's 400 for a body that is not JSON, or not UTF-8
            error = StagingError("invalid_request", f"the request is malformed: {exc.detail}")
            return JSONResponse(error.to_dict(), status_code=error.status_code)
        return JSONResponse({"detail": str(exc.detail), "code": code}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, _exc: OperationalError) -> JSONResponse:
        log.error("database error", exc_info=True)
        error = StagingError("database_unavailable", "the job database is unavailable; try again shortly")
        return JSONResponse(error.to_dict(), status_code=error.status_code, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        log.error("unexpected error while answering a request", exc_info=True)
        error = StagingError("internal_error", "the service failed unexpectedly; the log has the details")
        return JSONResponse(error.to_dict(), status_code=error.status_code)


def _record(request: Request, error: StagingError) -> None:
    """Record a malformed staging request (called before the body could be validated)."""
    if request.app.state.startup.runtime is None:
        return  # still starting: there is nowhere to record it yet
    try:
        params = request.query_params
        service_of(request).record_refusal(StageItem(params.get("method"), params.get("username"), None, None), error)
    except Exception:
        log.error("could not record a malformed request", exc_info=True)
