"""The FastAPI application: ``create_app(settings)`` builds it; start-up wires the pieces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from .. import __version__
from ..auth import Authenticator
from ..config import Settings, get_settings
from ..db import Database
from ..demo import ensure_demo_storage
from ..logs import configure_logging, get_logger
from .changefeed import ChangeFeed
from .docs import mount_docs
from .errors import install_error_handlers
from .middleware import DeclaredBodyLimit, SecurityHeaders
from .openapi import install_openapi
from .routes import dids, download, events, health, jobs, metrics, stage, storage, tools, usage
from .startup import Startup
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
    startup: Startup = app.state.startup
    bringing_up = asyncio.create_task(_bring_up(app, startup))  # the process answers meanwhile
    try:
        yield
    finally:
        bringing_up.cancel()
        with suppress(asyncio.CancelledError):
            await bringing_up
        if startup.runtime is not None:
            await app.state.changefeed.close()
            startup.runtime.stop()
        else:
            startup.db.dispose()
        log.info("skao-staging stopped")


async def _bring_up(app: FastAPI, startup: Startup) -> None:
    runtime = await startup.run()
    service = runtime.service
    waiters = JobWaiters(service.jobs, waiting_started=runtime.changes.poke)
    runtime.job_ended.connect(waiters.notify)
    runtime.changes.follow(waiters.waited)
    app.state.service, app.state.waiters, app.state.changefeed = service, waiters, ChangeFeed(service.jobs)
    startup.runtime = runtime  # from now on the routes reach the service
    log.info(
        "skao-staging %s ready: methods=%s database=%s",
        __version__,
        service.methods.enabled,
        startup.db.engine.url.render_as_string(hide_password=True),
    )


def create_app(settings: Settings | None = None, *, migrate: bool = False) -> FastAPI:
    """The application; ``migrate``: apply the database migrations at start (else only SQLite's)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="skao-staging",
        version=__version__,
        summary="Stages SKA data from the archive storage to where astronomers work.",
        lifespan=lifespan,
        docs_url=None,  # served by mount_docs, with its assets from this service
        redoc_url=None,  # ReDoc loads a logo from a CDN whatever its options: see api/docs.py
    )
    app.state.settings = settings
    app.state.startup = Startup(settings, Database(settings.database_url), migrate=migrate)
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes)  # streamed bodies
    app.add_middleware(DeclaredBodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    for module in (stage, jobs, usage, events, download, storage, dids, tools, health, metrics):
        app.include_router(module.router)
    install_openapi(app)
    mount_docs(app)
    mount_frontend(app)
    return app
