"""The job API: submit without waiting, read one job, list jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from ...auth import Identity
from ...db import JobStatus, StagingJob
from ...errors import StagingError
from ...service import StageItem, StagingService
from ..deps import IdentityDep, JobId, ServiceDep, staging_caller
from ..schemas import Attempt, ErrorBody, ItemOutcome, Job, JobPage, JobsAccepted, JobsRequest, RequestState

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
    fields: dict[str, Any] = {"username": body.username, "method": None}
    caller = await staging_caller(request, service, fields)
    items = [StageItem(item.method, item.local_path_on_storage, item.relative_path) for item in body.items]
    request_id, outcomes = await run_in_threadpool(
        service.submit_many, fields["username"], items, idempotency_key, caller.read_groups, (caller.uid, caller.gid)
    )
    return JobsAccepted(
        request_id=request_id,
        items=[
            ItemOutcome(index=index, job=Job.of(job), error=None if error is None else error.to_dict())
            for index, (job, error) in enumerate(outcomes)
        ],
    )


@router.get("/jobs/{job_id}", response_model=Job, responses={404: {"model": ErrorBody}})
def get_job(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    return Job.of(_job_or_404(service, job_id, identity))


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
    if identity.authenticated and not identity.is_admin:
        username = identity.acting_for(username)
    jobs, total = service.jobs.find(
        username=username,
        status=status.value if status else None,
        request_id=request,
        method=method,
        limit=limit,
        offset=offset,
    )
    return JobPage(jobs=[Job.of(job) for job in jobs], total=total, limit=limit, offset=offset)


def _job_or_404(service: StagingService, job_id: JobId, identity: Identity) -> StagingJob:
    job = service.jobs.get(job_id)
    if job is None or not identity.may_see(job.username):  # another user's job is not even confirmed
        raise StagingError("job_not_found", f"there is no job {job_id}")
    return job


@router.get("/jobs/{job_id}/attempts", response_model=list[Attempt], responses={404: {"model": ErrorBody}})
def job_attempts(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> list[Attempt]:
    """Each attempt at the job and how it ended."""
    _job_or_404(service, job_id, identity)
    return [Attempt.model_validate(row) for row in service.jobs.attempts_of(job_id)]


@router.delete("/jobs/{job_id}", status_code=202, response_model=Job, responses={409: {"model": ErrorBody}})
def cancel_job(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    """Cancel a job: a queued one never starts; a running one stops within a second."""
    job = _job_or_404(service, job_id, identity)
    if JobStatus(job.status).is_final:
        raise StagingError("job_finished", f"job {job_id} already ended ({job.status})")
    service.request_cancel([job_id])
    return Job.of(_job_or_404(service, job_id, identity))


@router.post("/jobs/{job_id}/retry", status_code=202, response_model=Job, responses={409: {"model": ErrorBody}})
def retry_job(job_id: JobId, service: ServiceDep, identity: IdentityDep) -> Job:
    """Queue a failed or cancelled job again."""
    job = _job_or_404(service, job_id, identity)
    if not service.jobs.retry(job_id):
        raise StagingError("job_finished", f"job {job_id} is {job.status}; only failed or cancelled jobs are retried")
    service.on_submit()
    return Job.of(_job_or_404(service, job_id, identity))


@router.get("/requests/{request_id}", response_model=RequestState, responses={404: {"model": ErrorBody}})
def get_request(request_id: str, service: ServiceDep, identity: IdentityDep) -> RequestState:
    jobs = service.jobs.jobs_of_request(request_id)
    summary = service.jobs.summarize_request(request_id)
    if summary is None or not all(identity.may_see(job.username) for job in jobs):
        raise StagingError("request_not_found", f"there is no request {request_id}")
    return RequestState(
        request_id=request_id,
        state=summary.state,
        jobs=sum(summary.counts.values()),
        counts=summary.counts,
        bytes_done=summary.bytes_done,
        bytes_total=summary.bytes_total,
    )


@router.delete("/requests/{request_id}", status_code=202, response_model=RequestState)
def cancel_request(request_id: str, service: ServiceDep, identity: IdentityDep) -> RequestState:
    """Cancel every job of a request that has not ended."""
    jobs = service.jobs.jobs_of_request(request_id)
    if not jobs or not all(identity.may_see(job.username) for job in jobs):
        raise StagingError("request_not_found", f"there is no request {request_id}")
    service.request_cancel([job.id for job in jobs if not JobStatus(job.status).is_final])
    return get_request(request_id, service, identity)
