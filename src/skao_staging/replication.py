"""Jobs waiting for their DID to be replicated to this site: queued once the replica is available
here, failed when their rule is STUCK or they waited past ``STAGING_RUCIO_REPLICATION_TIMEOUT_SECONDS``.

Waiting jobs hold no worker thread: one ``ReplicationWatch`` thread per process looks at them every
``STAGING_RUCIO_REPLICATION_POLL_SECONDS`` (a few Rucio calls for all of them). Every move is a
conditional update (``WHERE status = 'waiting'``), so processes that look at once do no harm.
Rucio not answering delays the waiting jobs; only their deadline fails them.
"""

from __future__ import annotations

from collections import defaultdict

from .catalogue import Catalogue, Did
from .config import Settings
from .db import JobStore, StagingJob, utcnow
from .errors import StagingError
from .hooks import Hook
from .logs import get_logger
from .periodic import Periodic

log = get_logger("replication")
BATCH = 5000  # waiting jobs looked at in one pass, the longest waiting first


class ReplicationWatch(Periodic):
    def __init__(self, settings: Settings, jobs: JobStore, catalogue: Catalogue, jobs_queued: Hook[int]) -> None:
        super().__init__("replication watch", settings.rucio_replication_poll_seconds, join_seconds=5)
        self.settings, self.jobs, self.catalogue, self.jobs_queued = settings, jobs, catalogue, jobs_queued

    def tick(self) -> None:
        try:
            self.look()
        except StagingError as error:  # Rucio did not answer: the jobs keep waiting
            log.warning("waiting jobs not looked at: %s (%s)", error.detail, error.code)

    def look(self) -> None:
        """One pass: queue the jobs whose replica arrived, fail those that cannot get one."""
        waiting = self.jobs.waiting(BATCH)
        if not waiting:
            return
        arrived = self.catalogue.replicas([Did.parse(job.did) for job in waiting])
        ready = [job.id for job in waiting if Did.parse(job.did) in arrived]
        if queued := self.jobs.stop_waiting(ready):
            log.info("%d waiting job(s) queued: their replicas are at this site now", queued)
            self.jobs_queued(queued)
        still = [job for job in waiting if job.id not in set(ready)]
        self._fail_late(still)
        self._fail_stuck([job for job in still if not _late(job)])

    def _fail_late(self, jobs: list[StagingJob]) -> None:
        late = [job.id for job in jobs if _late(job)]
        timeout = self.settings.rucio_replication_timeout_seconds
        reason = f"the replica did not reach this site within {timeout:g} s"
        if failed := self.jobs.fail_waiting(late, "replication_timeout", reason):
            log.warning("%d waiting job(s) failed: %s", failed, reason)

    def _fail_stuck(self, jobs: list[StagingJob]) -> None:
        by_rule: dict[str, list[int]] = defaultdict(list)
        for job in jobs:
            if job.replication_rule:
                by_rule[job.replication_rule].append(job.id)
        for rule, job_ids in by_rule.items():
            state, error = self.catalogue.rule_state(rule)
            if state != "STUCK":
                continue
            reason = f"Rucio rule {rule} is STUCK" + (f": {error}" if error else "")
            if failed := self.jobs.fail_waiting(job_ids, "replication_stuck", reason[:1000]):
                log.warning("%d waiting job(s) failed: %s", failed, reason)


def _late(job: StagingJob) -> bool:
    return job.wait_until is not None and job.wait_until <= utcnow()
