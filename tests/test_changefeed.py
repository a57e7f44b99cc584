"""The change feed behind the event streams: one database poll per process, every change delivered
once, bursts of changes stamped with the same instant paged through, slow clients let go."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveService
from conftest import live_service as live
from skao_staging.api.changefeed import QUEUE_LIMIT, Lagging, Subscription
from skao_staging.db import StagingJob


@pytest.fixture
def queue_only(tmp_path: Path) -> Iterator[tuple[LiveService, Any]]:
    """A service without a worker: submitted jobs stay queued until the test acts on them."""
    server, service = live(tmp_path, embedded_worker=False, max_items_per_request=5000)
    with server:
        yield service, server.server.config.app.state.service


def listen(url: str, seen: list[dict[str, Any]], cancelled: int, opened: threading.Event) -> None:
    """Collect events until ``cancelled`` distinct jobs were seen cancelled."""
    with httpx.stream("GET", url, timeout=60) as response:
        opened.set()
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if len({event["job_id"] for event in seen if event["status"] == "cancelled"}) >= cancelled:
                    return


def test_a_burst_stamped_with_one_instant_reaches_the_stream(queue_only: tuple[LiveService, Any]) -> None:
    service, _ = queue_only
    service.write_source("burst.bin", b"b")
    items = [
        {"method": "local_copy", "local_path_on_storage": "burst.bin", "relative_path": f"b{i}"} for i in range(1200)
    ]
    request_id = httpx.post(f"{service.url}/api/v1/jobs", json={"username": "bea", "items": items}, timeout=60).json()[
        "request_id"
    ]
    seen: list[dict[str, Any]] = []
    opened = threading.Event()
    listener = threading.Thread(
        target=listen, args=(f"{service.url}/api/v1/events?username=bea", seen, 1200, opened), daemon=True
    )
    listener.start()
    assert opened.wait(10)
    time.sleep(1.0)  # the stream is live before the change
    cancelled = httpx.delete(f"{service.url}/api/v1/requests/{request_id}", timeout=60).json()
    assert cancelled["counts"] == {"cancelled": 1200}  # one UPDATE: 1,200 rows with the same updated_at
    listener.join(30)
    cancelled_ids = {event["job_id"] for event in seen if event["status"] == "cancelled"}
    assert len(cancelled_ids) == 1200, f"{len(cancelled_ids)} of 1200 changes streamed"


def test_open_streams_share_one_poll(queue_only: tuple[LiveService, Any]) -> None:
    service, staging = queue_only
    calls = [0]
    original = staging.jobs.changed_since

    def counted(*args: Any, **kwargs: Any) -> list[StagingJob]:
        calls[0] += 1
        return original(*args, **kwargs)

    staging.jobs.changed_since = counted
    try:

        async def hold_streams(count: int, seconds: float) -> None:
            async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=count + 5)) as client:

                async def hold() -> None:
                    async with client.stream("GET", f"{service.url}/api/v1/events") as response:
                        async for _ in response.aiter_lines():
                            pass

                tasks = [asyncio.create_task(hold()) for _ in range(count)]
                await asyncio.sleep(seconds)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(hold_streams(40, 3.0))
    finally:
        staging.jobs.changed_since = original
    # one poll every 0.25 s for all 40 streams: about 12 queries, where one per stream would be 480
    assert 2 <= calls[0] <= 24, calls[0]


def test_a_client_too_far_behind_is_let_go() -> None:
    async def scenario() -> None:
        subscription = Subscription(username=None, job_id=None)
        job = StagingJob(id=1, username="u")
        assert all(subscription.offer(job) for _ in range(QUEUE_LIMIT))
        assert subscription.offer(job) is False  # one more than it holds
        for _ in range(QUEUE_LIMIT - 1):
            assert await subscription.next(1.0) is job
        with pytest.raises(Lagging):
            await subscription.next(1.0)
        assert await Subscription(None, None).next(0.01) is None  # nothing within the timeout

    asyncio.run(scenario())
