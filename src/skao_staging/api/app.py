"""The FastAPI application: ``create_app(settings)`` builds it; start-up wires the pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from .. import __version__
from ..auth import Authenticator
from ..config import Settings, get_settings
from ..db import Database, prepare_database, wait_for_database
from ..demo import ensure_demo_storage
from ..logs import configure_logging, get_logger
from ..runtime import Runtime
from .changefeed import ChangeFeed
from .errors import install_error_handlers
from .middleware import DeclaredBodyLimit, SecurityHeaders
from .routes import download, events, health, jobs, metrics, stage, storage, tools
from .ui import mount_frontend
from .waiters import JobWaiters

log = get_logger("app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings)
    if settings.auth_mode == "none":
        log.warning("STAGING_AUTH_MODE=none: the username parameter is trusted; for development only")
    if settings.uses_demo_storage:
        ensure_demo_storage(settings)
    db = Database(settings.database_url)
    await run_in_threadpool(wait_for_database, lambda: prepare_database(db), settings.startup_wait_seconds)
    runtime = Runtime(settings, db, role="api", threads=settings.worker_threads if settings.embedded_worker else 0)
    service = runtime.service
    waiters = JobWaiters(service.jobs)
    runtime.job_ended.connect(waiters.notify)
    runtime.start()
    changefeed = ChangeFeed(service.jobs)
    app.state.service, app.state.waiters, app.state.changefeed = service, waiters, changefeed
    log.info(
        "skao-staging %s ready: methods=%s database=%s",
        __version__,
        service.methods.enabled,
        db.engine.url.render_as_string(hide_password=True),
    )
    try:
        yield
    finally:
        await changefeed.close()
        runtime.stop()
        log.info("skao-staging stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="skao-staging",
        version=__version__,
        summary="Stages SKA data from the archive storage to where astronomers work.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes)  # streamed bodies
    app.add_middleware(DeclaredBodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    for module in (stage, jobs, events, download, storage, tools, health, metrics):
        app.include_router(module.router)
    mount_frontend(app)
    return app
