"""FastAPI dependencies: the objects built at start-up, taken from the application state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from ..auth import Authenticator, Identity
from ..errors import StagingError
from ..items import StageItem
from ..service import StagingService
from .changefeed import ChangeFeed
from .waiters import JobWaiters


def service_of(request: Request) -> StagingService:
    """The staging service; 503 with the reason while the process is still starting."""
    request.app.state.startup.check()
    service: StagingService = request.app.state.service
    return service


def changefeed_of(request: Request) -> ChangeFeed:
    request.app.state.startup.check()
    feed: ChangeFeed = request.app.state.changefeed
    return feed


def waiters_of(request: Request) -> JobWaiters:
    request.app.state.startup.check()
    waiters: JobWaiters = request.app.state.waiters
    return waiters


async def identity_of(request: Request) -> Identity:
    """The caller (blocking work, such as fetching an issuer's keys, runs off the event loop)."""
    authenticator: Authenticator = request.app.state.authenticator
    host = request.client.host if request.client else None
    return await run_in_threadpool(authenticator.identify, request.headers, host)


async def staging_caller(request: Request, service: StagingService, item: StageItem) -> tuple[Identity, StageItem]:
    """The caller of a staging request, and the item for the user it acts for.

    A refused identity is recorded as a failed job.
    """
    try:
        identity = await identity_of(request)
        return identity, item.for_user(identity.acting_for(item.username))
    except StagingError as error:
        await run_in_threadpool(service.record_refusal, item, error)
        raise


IdentityDep = Annotated[Identity, Depends(identity_of)]
ServiceDep = Annotated[StagingService, Depends(service_of)]
WaitersDep = Annotated[JobWaiters, Depends(waiters_of)]
ChangeFeedDep = Annotated[ChangeFeed, Depends(changefeed_of)]

JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A job's id")]  # the database's key range
