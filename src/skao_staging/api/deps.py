"""FastAPI dependencies: the objects built at start-up, taken from the application state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..service import StagingService
from ..worker import Worker
from .waiters import JobWaiters


def service_of(request: Request) -> StagingService:
    service: StagingService = request.app.state.service
    return service


def worker_of(request: Request) -> Worker | None:
    worker: Worker | None = request.app.state.worker
    return worker


def waiters_of(request: Request) -> JobWaiters:
    waiters: JobWaiters = request.app.state.waiters
    return waiters


ServiceDep = Annotated[StagingService, Depends(service_of)]
WaitersDep = Annotated[JobWaiters, Depends(waiters_of)]
WorkerDep = Annotated[Worker | None, Depends(worker_of)]
