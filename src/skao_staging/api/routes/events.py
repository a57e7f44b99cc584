"""Live job events as Server-Sent Events, read from the database so that any API replica can
stream what any worker does. Each stream polls for rows changed since its last look."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...db import FINAL_STATUSES, StagingJob, utcnow
from ...errors import StagingError
from ...service import StagingService
from ..deps import IdentityDep, JobId, ServiceDep
from ..schemas import Job

router = APIRouter(prefix="/api/v1", tags=["events"])
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _event(job: StagingJob) -> str:
    return f"event: job\nid: {job.id}\ndata: {json.dumps(Job.of(job).model_dump(mode='json'))}\n\n"


async def _changes(
    request: Request, service: StagingService, *, username: str | None = None, job_id: int | None = None
) -> AsyncIterator[StagingJob]:
    """Jobs as they change; each (job, updated_at) once, at most every POLL_SECONDS."""
    since: datetime = datetime(1970, 1, 1) if job_id is not None else utcnow() - timedelta(seconds=1)
    seen: set[tuple[int, datetime]] = set()
    while not await request.is_disconnected():
        rows = await run_in_threadpool(service.jobs.changed_since, since, username=username, job_id=job_id)
        for job in rows:
            if (job.id, job.updated_at) not in seen:
                seen.add((job.id, job.updated_at))
                yield job
        if rows:
            since = rows[-1].updated_at
            seen = {key for key in seen if key[1] >= since}
        await asyncio.sleep(POLL_SECONDS)


@router.get("/jobs/{job_id}/events", summary="Live changes of one job (Server-Sent Events)")
async def job_events(job_id: JobId, request: Request, service: ServiceDep, identity: IdentityDep) -> StreamingResponse:
    """State changes and progress of a job until it ends (the stream then closes)."""
    job = await run_in_threadpool(service.jobs.get, job_id)
    if job is None or not identity.may_see(job.username):
        raise StagingError("job_not_found", f"there is no job {job_id}")

    async def stream() -> AsyncIterator[str]:
        async for job in _with_keepalive(_changes(request, service, job_id=job_id)):
            if job is None:
                yield ": keepalive\n\n"
                continue
            yield _event(job)
            if job.status in FINAL_STATUSES:
                return

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/events", summary="Live changes of many jobs (Server-Sent Events)")
async def events(
    request: Request, service: ServiceDep, identity: IdentityDep, username: str | None = None
) -> StreamingResponse:
    """Every job change from now on (optionally of one user), until the client goes away.

    An authenticated user who is not an admin sees only their own jobs.
    """
    if identity.authenticated and not identity.is_admin:
        username = identity.acting_for(username)

    async def stream() -> AsyncIterator[str]:
        async for job in _with_keepalive(_changes(request, service, username=username)):
            yield ": keepalive\n\n" if job is None else _event(job)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def _with_keepalive(jobs: AsyncIterator[StagingJob]) -> AsyncIterator[StagingJob | None]:
    """Pass jobs through, and None whenever nothing came for KEEPALIVE_SECONDS."""
    iterator = jobs.__aiter__()
    pending = asyncio.ensure_future(iterator.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield None
                continue
            try:
                job = pending.result()
            except StopAsyncIteration:
                return
            yield job
            pending = asyncio.ensure_future(iterator.__anext__())
    finally:
        pending.cancel()
