"""direct_download: the file streamed as an attachment (HTTP Range honoured), recorded as a job.

``POST /stage_data?method=direct_download`` answers with the file itself; ``GET /api/v1/download``
is the same for a browser link.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from ...auth import Identity
from ...db import StagingJob
from ...items import StageItem
from ...service import StagingService
from ..deps import ServiceDep, staging_caller

router = APIRouter(tags=["download"])
CHUNK_BYTES = 1024 * 1024


class RecordedFileResponse(FileResponse):
    """A streamed file whose end (complete, or cut by the client) is recorded in its job."""

    chunk_size = CHUNK_BYTES

    def __init__(self, service: StagingService, job: StagingJob, path: str, filename: str) -> None:
        super().__init__(path, filename=filename, content_disposition_type="attachment")
        self.headers["x-staging-job-id"] = str(job.id)
        self.service, self.job = service, job

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent, complete = [0], [False]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                sent[0] += len(message.get("body", b""))
                complete[0] = not message.get("more_body", False)
            await send(message)

        error: BaseException | None = None
        try:
            await super().__call__(scope, receive, counting_send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if error is None and not complete[0]:
                error = ConnectionError("client disconnected")
            await run_in_threadpool(self.service.finish_download, self.job, sent[0], error)


async def download_response(service: StagingService, item: StageItem, caller: Identity) -> RecordedFileResponse:
    job, source = await run_in_threadpool(service.start_download, item, caller)
    name = os.path.basename((item.relative_path or "").rstrip("/")) or source.name
    return RecordedFileResponse(service, job, str(source), name)


@router.get(
    "/api/v1/download",
    summary="Download a file from the storage",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Partial content"}},
)
async def download(
    request: Request,
    service: ServiceDep,
    path: Annotated[str, Query(description="Source, as local_path_on_storage")],
    username: Annotated[str | None, Query(description="Who downloads (recorded in the job)")] = None,
    filename: Annotated[str | None, Query(description="Name to save as (default: the source's)")] = None,
) -> RecordedFileResponse:
    caller, item = await staging_caller(request, service, StageItem("direct_download", username, path, filename))
    return await download_response(service, item, caller)
