"""The job API: submit without waiting, read one job, list jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from ...db import JobStatus
from ...items import StageItem
from ..deps import IdentityDep, JobId, ServiceDep, staging_caller
from ..schemas import (
    Attempt,
    ErrorBody,
    Job,
    JobPage,
    JobsAccepted,
    JobsRequest,
    LifetimeChange,
    RequestState,
    lifetime_text,
)

router = APIRouter(prefix="/api/v1", tags=["jobs"])


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobsAccepted,
    responses={413: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def submit_jobs(
    request: Request,
    body: JobsRequest,
    service: ServiceDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> JobsAccepted:
    """Queue one job per item and answer at once; refused items carry their error.

    With an ``Idempotency-Key`` header, a repeated submission answers with the jobs of the first.
    """
    caller, who = await staging_caller(request, service, StageItem(None, body.username, None, None))
    items = [
        StageItem(
            item.method,
            who.username,
            item.local_path_on_storage,
            item.relative_path,
            item.did,
            item.did if item.request_replication else None,
            lifetime_text(item.lifetime if item.lifetime is not None else body.lifetime),
        )
        for item in body.items
    ]
    request_id, outcomes = await run_in_threadpool(service.submit_many, who.username, items, caller, idempotency_key)
    return JobsAccepted.of(request_id, outcomes)


@router.get("/jobs/{job_id}", response_model=Job, responses={404: {"model": ErrorBody}})
def get_job(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    return Job.of(service.job(job_id, identity))


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    service: ServiceDep,
    identity: IdentityDep,
    username: str | None = None,
    status: JobStatus | None = None,
    request: Annotated[str | None, Query(description="Only the jobs of this request id")] = None,
    method: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> JobPage:
    """Jobs, newest first (an authenticated user who is not an admin sees only their own)."""
    jobs, total = service.find(
        identity,
        username,
        status=status.value if status else None,
        request_id=request,
        method=method,
        limit=limit,
        offset=offset,
    )
    return JobPage(jobs=[Job.of(job) for job in jobs], total=total, limit=limit, offset=offset)


@router.get("/jobs/{job_id}/attempts", response_model=list[Attempt], responses={404: {"model": ErrorBody}})
def job_attempts(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> list[Attempt]:
    """Each attempt at the job and how it ended."""
    return [Attempt.model_validate(row) for row in service.attempts(job_id, identity)]


@router.delete("/jobs/{job_id}", status_code=202, response_model=Job, responses={409: {"model": ErrorBody}})
def cancel_job(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    """Cancel a job: a queued one never starts; a running one stops within a second."""
    return Job.of(service.cancel(job_id, identity))


@router.post("/jobs/{job_id}/retry", status_code=202, response_model=Job, responses={409: {"model": ErrorBody}})
def retry_job(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    """Queue a failed or cancelled job again."""
    return Job.of(service.retry(job_id, identity))


@router.patch("/jobs/{job_id}", response_model=Job, responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}})
def change_job(job_id: JobId, body: LifetimeChange, service: ServiceDep, identity: IdentityDep) -> Job:
    """Keep the job's staged data for a new ``lifetime`` from now (up to the site's maximum)."""
    return Job.of(service.set_lifetime(job_id, lifetime_text(body.lifetime), identity))


@router.delete("/jobs/{job_id}/data", response_model=Job, responses={409: {"model": ErrorBody}})
def release_job_data(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    """Remove the job's staged data now: what is still as it was staged (the rest is kept and reported)."""
    return Job.of(service.release(job_id, identity))


@router.get("/requests/{request_id}", response_model=RequestState, responses={404: {"model": ErrorBody}})
def get_request(request_id: str, service: ServiceDep, identity: IdentityDep) -> RequestState:
    return RequestState.of(service.request_state(request_id, identity))


@router.delete("/requests/{request_id}", status_code=202, response_model=RequestState)
def cancel_request(request_id: str, service: ServiceDep, identity: IdentityDep) -> RequestState:
    """Cancel every job of a request that has not ended."""
    return RequestState.of(service.cancel_request(request_id, identity))


@router.patch(
    "/requests/{request_id}",
    response_model=RequestState,
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)
def change_request(request_id: str, body: LifetimeChange, service: ServiceDep, identity: IdentityDep) -> RequestState:
    """A new ``lifetime`` from now for every job of the request that is active or holds data."""
    return RequestState.of(service.set_request_lifetime(request_id, lifetime_text(body.lifetime), identity))


@router.delete("/requests/{request_id}/data", response_model=RequestState)
def release_request_data(request_id: str, service: ServiceDep, identity: IdentityDep) -> RequestState:
    """Remove the staged data of every job of the request now."""
    return RequestState.of(service.release_request(request_id, identity))
