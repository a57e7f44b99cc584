"""The job API: submit without waiting, read one job, list jobs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from ...db import JobStatus
from ...errors import StagingError
from ..deps import ServiceDep
from ..schemas import ErrorBody, ItemOutcome, Job, JobPage, JobsAccepted, JobsRequest

router = APIRouter(prefix="/api/v1", tags=["jobs"])


@router.post("/jobs", status_code=202, response_model=JobsAccepted, responses={422: {"model": ErrorBody}})
async def submit_jobs(body: JobsRequest, service: ServiceDep) -> JobsAccepted:
    """Queue one job per item and answer at once; refused items carry their error."""
    request_id = str(uuid.uuid4())

    def submit_all() -> list[ItemOutcome]:
        outcomes = []
        for index, item in enumerate(body.items):
            try:
                job = service.submit(
                    item.method, body.username, item.local_path_on_storage, item.relative_path, request_id
                )
                outcomes.append(ItemOutcome(index=index, job=Job.of(job)))
            except StagingError as error:
                refused = service.jobs.get(error.extra["job_id"])
                assert refused is not None
                outcomes.append(ItemOutcome(index=index, job=Job.of(refused), error=error.to_dict()))
        return outcomes

    return JobsAccepted(request_id=request_id, items=await run_in_threadpool(submit_all))


@router.get("/jobs/{job_id}", response_model=Job, responses={404: {"model": ErrorBody}})
def get_job(job_id: int, service: ServiceDep) -> Job:
    job = service.jobs.get(job_id)
    if job is None:
        raise StagingError("job_not_found", f"there is no job {job_id}")
    return Job.of(job)


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    service: ServiceDep,
    username: str | None = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    """Jobs, newest first."""
    jobs, total = service.jobs.find(
        username=username, status=status.value if status else None, limit=limit, offset=offset
    )
    return JobPage(jobs=[Job.of(job) for job in jobs], total=total, limit=limit, offset=offset)
