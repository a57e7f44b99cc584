"""The seed's endpoint: ``POST /stage_data?method=...&username=...``, answered when the job ends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...db import FINAL_STATUSES, JobStatus
from ...errors import status_for
from ...items import StageItem
from ..deps import ServiceDep, WaitersDep, staging_caller
from ..schemas import LIFETIME_DESCRIPTION, ErrorBody, Job, JobsAccepted, StageBody
from .download import FILE_SCHEMA, download_response

router = APIRouter(tags=["staging"])


@router.post(
    "/stage_data",
    name="stage_data",
    summary="Stage data (the seed's endpoint)",
    response_model=Job,
    responses={
        200: {
            "description": "The finished job; for direct_download, the file itself with its own media type",
            "content": {"*/*": {"schema": FILE_SCHEMA}},
        },
        202: {
            "model": Job | JobsAccepted,
            "description": "Still running after the wait limit, or waiting for replication: poll "
            "/api/v1/jobs/{id}. A dataset or container DID: its request (one job per file), "
            "followed at the Location /api/v1/requests/{id}",
        },
        400: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        409: {"model": ErrorBody},
        422: {"model": ErrorBody},
        500: {"model": ErrorBody},
    },
)
async def stage_data(
    request: Request,
    body: StageBody,
    service: ServiceDep,
    waiters: WaitersDep,
    method: Annotated[str | None, Query(description="local_copy, symlink_copy, direct_download, jupyter_copy")] = None,
    username: Annotated[
        str | None, Query(description="The user whose area receives the data (default: the caller)")
    ] = None,
    lifetime: Annotated[str | None, Query(max_length=64, description=LIFETIME_DESCRIPTION)] = None,
) -> Response:
    """Stage ``local_path_on_storage`` to ``<user area>/<relative_path>`` with ``method``.

    Answers 200 with the finished job (``succeeded``, or ``skipped`` when the destination already
    holds the same content), an error with its code, or for ``direct_download`` the file itself.
    """
    replicate = body.did if body.request_replication else None
    item = StageItem(method, username, body.local_path_on_storage, body.relative_path, body.did, replicate, lifetime)
    caller, item = await staging_caller(request, service, item)
    if item.method == "direct_download" and "direct_download" in service.methods.enabled:
        return await download_response(service, item, caller)
    # A DID may name a collection, found out from the catalogue off the event loop; a path never does.
    if item.did is not None and await run_in_threadpool(service.names_collection, item, caller):
        request_id, outcomes = await run_in_threadpool(service.submit_many, item.username, [item], caller)
        accepted = JobsAccepted.of(request_id, outcomes).model_dump(mode="json")
        return JSONResponse(accepted, status_code=202, headers={"Location": f"/api/v1/requests/{request_id}"})
    job = await run_in_threadpool(service.stage_now, item, caller)
    if job.status not in FINAL_STATUSES and job.status != JobStatus.WAITING:  # waiting may take hours
        job = await waiters.wait(job.id, service.settings.sync_timeout_seconds)
    answer = Job.of(job)
    if job.status == JobStatus.FAILED:
        content = {"detail": job.error_reason, "code": job.error_code, "job_id": job.id}
        return JSONResponse(content, status_code=status_for(job.error_code))
    status_code = 200 if job.status in (JobStatus.SUCCEEDED, JobStatus.SKIPPED) else 202
    return JSONResponse(answer.model_dump(mode="json"), status_code=status_code)
