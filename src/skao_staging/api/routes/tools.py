"""Admin tools: the service log (backlog and live stream) and test-file creation in the storage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...logtail import Follower, backlog, keep
from ..deps import IdentityDep, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["admin tools"])
Level = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
POLL_SECONDS = 0.5


@router.get("/logs", summary="The last lines of the service log (admins)")
def log_lines(
    service: ServiceDep,
    identity: IdentityDep,
    lines: Annotated[int, Query(ge=1, le=5000)] = 200,
    level: Level | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, list[str]]:
    identity.require_admin()
    return {"lines": backlog(service.settings.log_file, lines, level, search)}


@router.get("/logs/stream", summary="The service log live, as Server-Sent Events (admins)")
async def log_stream(
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    backlog_lines: Annotated[int, Query(ge=0, le=2000)] = 100,
    level: Level | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """A bounded backlog first, then each new line; never the whole file."""
    identity.require_admin()
    path = service.settings.log_file

    async def stream() -> AsyncIterator[str]:
        follower = Follower(path)
        for line in await run_in_threadpool(backlog, path, backlog_lines, level, search) if backlog_lines else []:
            yield f"event: line\ndata: {json.dumps(line)}\n\n"
        while not await request.is_disconnected():
            for line in await run_in_threadpool(follower.new_lines):
                if keep(line, level, search):
                    yield f"event: line\ndata: {json.dumps(line)}\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


class NewFile(BaseModel):
    path: str = Field(description="Where to create it, relative to the first storage root")
    size: int | None = Field(None, ge=0, description="Bytes of random data (when no text is given)")
    text: str | None = Field(None, description="The file's text")


class CreatedFile(BaseModel):
    local_path_on_storage: str
    bytes: int


@router.post(
    "/files",
    status_code=201,
    response_model=CreatedFile,
    summary="Create a test file in the storage (admins, when enabled)",
)
def create_file(body: NewFile, service: ServiceDep, identity: IdentityDep) -> CreatedFile:
    """Writes only inside the first storage root, never overwrites, and stays under the size limit."""
    path, size = service.create_test_file(body.path, body.size, body.text, identity)
    return CreatedFile(local_path_on_storage=path, bytes=size)
