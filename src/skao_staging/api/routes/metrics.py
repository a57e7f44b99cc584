"""Prometheus metrics at /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from ...metrics import exposition
from ..deps import ServiceDep

router = APIRouter()


@router.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    return Response(await run_in_threadpool(exposition, service.jobs), media_type=CONTENT_TYPE_LATEST)
