"""Live job events as Server-Sent Events. Changes come from the process's ChangeFeed, which reads
the database, so any API replica streams what any worker does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...db import FINAL_STATUSES, StagingJob
from ...errors import StagingError
from ..changefeed import Lagging
from ..deps import ChangeFeedDep, IdentityDep, JobId, ServiceDep
from ..schemas import Job

router = APIRouter(prefix="/api/v1", tags=["events"])
KEEPALIVE_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = ": keepalive\n\n"


def _event(job: StagingJob) -> str:
    return f"event: job\nid: {job.id}\ndata: {json.dumps(Job.of(job).model_dump(mode='json'))}\n\n"


@router.get("/jobs/{job_id}/events", summary="Live changes of one job (Server-Sent Events)")
async def job_events(
    job_id: JobId, request: Request, service: ServiceDep, feed: ChangeFeedDep, identity: IdentityDep
) -> StreamingResponse:
    """The job as it is, then each change until it ends (the stream then closes)."""
    job = await run_in_threadpool(service.jobs.get, job_id)
    if job is None or not identity.may_see(job.username):
        raise StagingError("job_not_found", f"there is no job {job_id}")

    async def stream() -> AsyncIterator[str]:
        async with feed.subscribe(job_id=job_id) as subscription:
            current = await run_in_threadpool(service.jobs.get, job_id)  # after subscribing: nothing is missed
            if current is None:
                return
            yield _event(current)
            latest = current.updated_at
            while current.status not in FINAL_STATUSES and not await request.is_disconnected():
                try:
                    change = await subscription.next(KEEPALIVE_SECONDS)
                except Lagging:
                    return
                if change is None:
                    yield KEEPALIVE
                elif change.updated_at > latest:
                    current, latest = change, change.updated_at
                    yield _event(current)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/events", summary="Live changes of many jobs (Server-Sent Events)")
async def events(
    request: Request, feed: ChangeFeedDep, identity: IdentityDep, username: str | None = None
) -> StreamingResponse:
    """Every job change from now on (optionally of one user), until the client goes away.

    An authenticated user who is not an admin sees only their own jobs.
    """
    if identity.authenticated and not identity.is_admin:
        username = identity.acting_for(username)

    async def stream() -> AsyncIterator[str]:
        async with feed.subscribe(username=username) as subscription:
            while not await request.is_disconnected():
                try:
                    change = await subscription.next(KEEPALIVE_SECONDS)
                except Lagging:
                    return  # the client reconnects and reloads
                yield KEEPALIVE if change is None else _event(change)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
