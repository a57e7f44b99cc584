"""Prompt wake-ups across processes, without a broker: jobs queued by one process, ended by another.

Inside one process the ``jobs_queued`` and ``job_ended`` hooks wake worker threads and waiting API
requests at once. Across processes (an API replica and separate workers) the database carries them:

- **PostgreSQL**: its own notifications. The job store sends ``NOTIFY staging_queued`` when jobs
  become claimable and ``NOTIFY staging_ended`` (the job's id) when one ends, delivered on commit;
  ``PostgresListener`` LISTENs on one connection per process and fires the hooks.
- **MariaDB/MySQL** (no notifications): ``ChangeWatch`` polls one cheap query (the newest job id and
  the latest change, both indexed) every FAST_SECONDS while the process is busy (something changed
  in the last HOT_SECONDS, or a request waits here) and every ``poll_seconds`` when it is idle.
- **SQLite**: one process; the hooks suffice, and the watch's idle tick replaces the workers' polling.

On every database the watch's idle tick also lets one worker thread try a claim, which finds jobs
whose retry delay ran out, and looks at the jobs that requests of this process wait for: a lost
notification delays a wake-up by at most ``poll_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import psycopg
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from .db import JobStore
from .db.jobs import ENDED_CHANNEL, QUEUED_CHANNEL
from .hooks import Hook
from .logs import get_logger

log = get_logger("wakeups")
FAST_SECONDS = 0.005  # while busy: a job queued elsewhere is claimed, or an end seen, within ~5 ms
HOT_SECONDS = 5.0  # busy for this long after the last change seen
LISTEN_TIMEOUT = 1.0  # the listener looks at ``stopping`` this often


class ChangeWatch:
    """Polls the jobs table for changes made by other processes (fast only where ``fast``)."""

    def __init__(
        self,
        jobs: JobStore,
        poll_seconds: float,
        *,
        fast: bool,
        jobs_queued: Hook[int],
        job_ended: Hook[int],
        idle_threads: Callable[[], int] | None,
    ) -> None:
        self.jobs, self.poll_seconds, self.fast = jobs, poll_seconds, fast
        self.jobs_queued, self.job_ended = jobs_queued, job_ended
        self._idle_threads = idle_threads  # None in a process without worker threads
        self._waited: Callable[[], Sequence[int]] = list
        self._seen: tuple[int | None, datetime | None] | None = None
        self._hot_until = self._next_claim = 0.0
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="staging-change-watch", daemon=True)

    def follow(self, waited: Callable[[], Sequence[int]]) -> None:
        """Also watch the jobs that ``waited()`` names (the requests of this process wait for them)."""
        self._waited = waited

    def poke(self) -> None:
        """Something new to watch: look now, and at the fast pace while it lasts (where polling is fast)."""
        if self.fast:
            self._poked.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._poked.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._poked.wait(self._interval())
            self._poked.clear()
            if self._stopping.is_set():
                return
            try:
                self._tick()
            except OperationalError:
                log.debug("the database did not answer the change watch", exc_info=True)
                self._stopping.wait(self.poll_seconds)
            except Exception:
                log.error("the change watch failed; it goes on", exc_info=True)
                self._stopping.wait(self.poll_seconds)

    def _busy(self) -> bool:
        return self.fast and (time.monotonic() < self._hot_until or bool(self._waited()))

    def _interval(self) -> float:
        return FAST_SECONDS if self._busy() else self.poll_seconds

    def _tick(self) -> None:
        if self._idle_threads is not None and self._idle_threads() > 0:
            self._look_for_jobs()
        waited = self._waited()
        if waited:
            for job_id in self.jobs.ended_among(waited):
                self.job_ended(job_id)

    def _look_for_jobs(self) -> None:
        now = time.monotonic()
        seen = self.jobs.last_change() if self.fast else None
        if seen != self._seen:
            self._seen, self._hot_until = seen, now + HOT_SECONDS
            self.jobs_queued(1)  # a thread that claims a job wakes the next one (``Worker``)
        elif now >= self._next_claim:
            self.jobs_queued(1)  # a claim every poll_seconds at least: due retries, anything not announced
        else:
            return
        self._next_claim = now + self.poll_seconds


class PostgresListener:
    """Fires the hooks on PostgreSQL's notifications of queued and ended jobs, on its own connection.

    The connection is opened again after a failure; whatever was announced meanwhile is found by the
    ``ChangeWatch``'s idle tick.
    """

    def __init__(self, database_url: str, jobs_queued: Hook[int], job_ended: Hook[int]) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self.jobs_queued, self.job_ended = jobs_queued, job_ended
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="staging-postgres-listener", daemon=True)
        self.listening = threading.Event()  # set while LISTEN is in force

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(LISTEN_TIMEOUT + 5)

    def _run(self) -> None:
        pause = 0.5
        while not self._stopping.is_set():
            try:
                self._listen()
                pause = 0.5
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("listening for job notifications failed (%s); again in %.1fs", exc, pause)
                self._stopping.wait(pause)
                pause = min(pause * 2, 10.0)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {QUEUED_CHANNEL}")
            connection.execute(f"LISTEN {ENDED_CHANNEL}")
            self.listening.set()
            self.jobs_queued(1)  # anything queued while nobody listened
            while not self._stopping.is_set():
                for notice in connection.notifies(timeout=LISTEN_TIMEOUT):
                    self._deliver(notice.channel, notice.payload)
        self.listening.clear()

    def _deliver(self, channel: str, payload: str) -> None:
        if channel == QUEUED_CHANNEL:
            self.jobs_queued(int(payload or 1))
        elif channel == ENDED_CHANNEL and payload.isdigit():
            self.job_ended(int(payload))
