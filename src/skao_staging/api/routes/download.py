"""direct_download: the file streamed as an attachment (HTTP Range honoured), recorded as a job.

``POST /stage_data?method=direct_download`` answers with the file itself; ``GET /api/v1/download``
is the same for a browser link.
"""

from __future__ import annotations

import os
from typing import Annotated
from urllib.parse import quote
from zipfile import ZIP_STORED

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send
from zipstream import ZipStream

from ...auth import Identity
from ...db import StagingJob
from ...items import StageItem
from ...service import StagingService
from ...sources import SourcePlan
from ..deps import ServiceDep, staging_caller

router = APIRouter(tags=["download"])
CHUNK_BYTES = 1024 * 1024


class RecordsItsEnd(Response):
    """A streamed answer whose end (complete, or cut by the client) is recorded in its download job."""

    service: StagingService
    job: StagingJob

    def _record_for(self, service: StagingService, job: StagingJob) -> None:
        self.service, self.job = service, job
        self.headers["x-staging-job-id"] = str(job.id)

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


class RecordedFileResponse(RecordsItsEnd, FileResponse):
    """One file, streamed with HTTP Range."""

    chunk_size = CHUNK_BYTES

    def __init__(self, service: StagingService, job: StagingJob, path: str, filename: str) -> None:
        FileResponse.__init__(self, path, filename=filename, content_disposition_type="attachment")
        self._record_for(service, job)


class RecordedZipResponse(RecordsItsEnd, StreamingResponse):
    """A folder or a dataset as one ZIP, streamed as it is made: stored (science data does not
    compress), zip64 when large, no temporary file, memory independent of the size."""

    def __init__(self, service: StagingService, job: StagingJob, plan: SourcePlan, name: str) -> None:
        archive = ZipStream(compress_type=ZIP_STORED, sized=True)
        for entry in plan.entries:  # the plan's checked paths, never a fresh walk of the folder
            arcname = "/".join((name, *entry.parts))
            archive.add_path(str(entry.real), arcname, recurse=False)
        StreamingResponse.__init__(self, iter(archive), media_type="application/zip")
        self.headers["content-length"] = str(len(archive))
        self.headers["content-disposition"] = f'attachment; filename="{quote(name)}.zip"'
        self._record_for(service, job)


async def download_response(service: StagingService, item: StageItem, caller: Identity) -> RecordsItsEnd:
    job, plan = await run_in_threadpool(service.start_download, item, caller)
    name = os.path.basename((item.relative_path or "").rstrip("/")) or plan.top.name
    if plan.is_dir:
        return RecordedZipResponse(service, job, plan, name.removesuffix(".zip"))
    return RecordedFileResponse(service, job, str(plan.top), name)


FILE_SCHEMA = {"type": "string", "format": "binary"}


@router.get(
    "/api/v1/download",
    summary="Download a file, or a folder or dataset as one ZIP",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file with its own media type, or a folder or dataset as application/zip",
            "content": {"*/*": {"schema": FILE_SCHEMA}},
        },
        206: {"description": "The range asked for (HTTP Range)", "content": {"*/*": {"schema": FILE_SCHEMA}}},
    },
)
async def download(
    request: Request,
    service: ServiceDep,
    path: Annotated[str, Query(description="Source, as local_path_on_storage")],
    username: Annotated[str | None, Query(description="Who downloads (recorded in the job)")] = None,
    filename: Annotated[str | None, Query(description="Name to save as (default: the source's)")] = None,
) -> RecordsItsEnd:
    caller, item = await staging_caller(request, service, StageItem("direct_download", username, path, filename))
    return await download_response(service, item, caller)
