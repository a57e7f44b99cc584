"""Prometheus metrics: this process's counters, and the job table's state read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .db import JobStore

PROCESS = CollectorRegistry()
BYTES_STAGED = Counter("skao_staging_bytes_staged", "Bytes of jobs that succeeded.", ["method"], registry=PROCESS)
ATTEMPTS = Counter(
    "skao_staging_attempts", "Attempts ended in this process, by outcome.", ["method", "outcome"], registry=PROCESS
)
DURATION = Histogram(
    "skao_staging_attempt_duration_seconds",
    "Duration of attempts ended in this process.",
    ["method"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
    registry=PROCESS,
)
HEARTBEAT = Gauge(
    "skao_staging_heartbeat_timestamp_seconds", "When this process last renewed its leases.", registry=PROCESS
)
RELEASES = Counter(
    "skao_staging_releases",
    "Jobs whose staged data was released in this process, by reason.",
    ["method", "reason"],
    registry=PROCESS,
)
RUNNING_HERE = Gauge("skao_staging_jobs_running_here", "Jobs running in this process.", registry=PROCESS)


def record_attempt(method: str | None, outcome: str, seconds: float, staged_bytes: int = 0) -> None:
    label = method or "unknown"
    ATTEMPTS.labels(label, outcome).inc()
    DURATION.labels(label).observe(seconds)
    if staged_bytes:
        BYTES_STAGED.labels(label).inc(staged_bytes)


class JobTableCollector(Collector):
    """Jobs by state and method, and the queue depth, as the shared database holds them."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "skao_staging_jobs", "Jobs in the database by state and method.", labels=["state", "method"]
        )
        queued = 0
        for state, method, count in self.jobs.counts_by_state():
            by_state.add_metric([state, method or "unknown"], count)
            queued += count if state == "queued" else 0
        yield by_state
        yield GaugeMetricFamily("skao_staging_queue_depth", "Jobs waiting to be claimed.", value=queued)
        held_bytes = GaugeMetricFamily(
            "skao_staging_held_bytes", "Bytes of staged data held (not released), by method.", labels=["method"]
        )
        held_files = GaugeMetricFamily(
            "skao_staging_held_files", "Files of staged data held (not released), by method.", labels=["method"]
        )
        by_method: dict[str, list[int]] = {}
        for holding in self.jobs.holdings(None, all_users=True):
            totals = by_method.setdefault(holding.method, [0, 0])
            totals[0] += holding.bytes
            totals[1] += holding.files
        for method, (size, files) in sorted(by_method.items()):
            held_bytes.add_metric([method], size)
            held_files.add_metric([method], files)
        yield held_bytes
        yield held_files


def exposition(jobs: JobStore) -> bytes:
    table = CollectorRegistry()
    table.register(JobTableCollector(jobs))
    return generate_latest(PROCESS) + generate_latest(table)
