"""Releasing staged data: on request (release), and when it expires (the reaper).

Only what the service itself published, and only while it is as it was published, is removed
(``StagingMethod.release``); what stays is recorded in the job's ``release_note``. The reaper runs
in every worker process and in ``serve``'s embedded worker, and one process at a time acts: it
leads through a row of ``staging_leaders`` that it renews while it works. The lead spreads the
work, it does not make it safe: two releases of one job only find less to remove, and the job
records the first.
"""

from __future__ import annotations

import time
from datetime import timedelta
from enum import StrEnum

from . import metrics
from .config import Settings
from .db import JobStore, StagingJob, utcnow
from .logs import get_logger
from .methods import HeldData, MethodRegistry, PublishedEntry, ReleasePostponed
from .paths import resolve_destination
from .periodic import Periodic

log = get_logger("reaper")
TASK = "reaper"
BATCH = 200
POSTPONE = timedelta(hours=1)  # an expiry whose data cannot be reached now is tried again after this


class ReleaseReason(StrEnum):
    EXPIRED = "expired"
    USER = "released by user"
    ADMIN = "released by admin"


class Releaser:
    """Removes one job's staged data and records the release."""

    def __init__(self, settings: Settings, jobs: JobStore, methods: MethodRegistry) -> None:
        self.settings, self.jobs, self.methods = settings, jobs, methods

    def holds_data(self, job: StagingJob) -> bool:
        """Whether the job published data that is not released yet."""
        method = self.methods.of_job(job.method)
        return job.status == "succeeded" and job.released_at is None and method is not None and method.releasable

    def release(self, job: StagingJob, reason: ReleaseReason) -> bool:
        """Remove what the job published and still holds unchanged; False when another release came first
        or the data cannot be reached now (then an expiry is tried again after ``POSTPONE``)."""
        method = self.methods.of_job(job.method)
        if method is None or not method.releasable:
            raise ValueError(f"job {job.id} holds no data to release")
        started = time.monotonic()
        try:
            released = method.release(self._held(job, requested=reason is not ReleaseReason.EXPIRED))
        except ReleasePostponed as postponed:
            self.jobs.postpone_expiry(job.id, utcnow() + POSTPONE)
            log.info("job %s: release postponed by %s: %s", job.id, POSTPONE, postponed)
            return False
        recorded = self.jobs.mark_released(job.id, reason.value, released.note())
        metrics.RELEASES.labels(str(job.method), reason.value).inc()
        log.info(
            "job %s released (%s) user=%s destination=%s files_removed=%d kept=%d gone=%d duration=%.3fs",
            job.id,
            reason.value,
            job.username,
            job.destination,
            released.removed,
            len(released.kept),
            released.gone,
            time.monotonic() - started,
        )
        return recorded

    def _held(self, job: StagingJob, *, requested: bool) -> HeldData:
        destination = resolve_destination(self.settings.user_areas, str(job.username), job.relative_path)
        is_dir = job.output_identity is None
        if is_dir:
            entries = [PublishedEntry(path, identity, size) for path, identity, size in self.jobs.outputs_of(job.id)]
        else:
            entries = [PublishedEntry("", job.output_identity, job.bytes_total)]
        return HeldData(job.id, str(job.username), destination, is_dir, entries, self.settings, requested)


def step_down(jobs: JobStore, task: str, process_id: str) -> None:
    """Give up the lead of ``task`` at shutdown, so another process takes it at once."""
    try:
        jobs.step_down(task, process_id)
    except Exception:
        log.warning("the %s lead could not be given up; another process takes it when it lapses", task)


class Reaper(Periodic):
    """A thread that releases expired data every ``STAGING_REAPER_INTERVAL_SECONDS``, when this process leads."""

    def __init__(self, releaser: Releaser, process_id: str) -> None:
        super().__init__("reaper", releaser.settings.reaper_interval_seconds)
        self.releaser, self.process_id = releaser, process_id
        self.jobs = releaser.jobs
        self.lease = max(3 * self.interval, 1.0)  # a stopped leader's lead lapses after three intervals

    def tick(self) -> None:
        self.reap()

    def stopped(self) -> None:
        step_down(self.jobs, TASK, self.process_id)

    def reap(self) -> int:
        """Release expired data while this process leads; how many jobs it released."""
        released = 0
        while not self.stopping.is_set() and self.jobs.lead(TASK, self.process_id, self.lease):
            renewed, before = time.monotonic(), released
            expired = self.jobs.expired(utcnow(), BATCH)
            for job in expired:
                if self.stopping.is_set() or time.monotonic() - renewed > self.lease / 2:
                    break  # renew the lead before going on
                released += self._release(job)
            if len(expired) < BATCH or released == before:  # all done, or a batch that only failed
                break
        return released

    def _release(self, job: StagingJob) -> int:
        try:
            return int(self.releaser.release(job, ReleaseReason.EXPIRED))
        except Exception:
            log.error("job %s: releasing its expired data failed; tried again next time", job.id, exc_info=True)
            return 0
