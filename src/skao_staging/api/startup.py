"""Bringing the API's staging machinery up while the process already answers.

``serve`` listens at once: ``/healthz`` answers 200 (the process lives) while the database is not
reachable or its schema not current; ``/readyz`` and every route that needs the service answer 503
with the reason (``database_unavailable``, ``schema_not_current``) until the ``Startup`` completes.
On Kubernetes the pod is then unready, not restarted in a loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from ..config import Settings
from ..db import Database, SchemaNotCurrent, prepare_database, upgrade
from ..errors import StagingError
from ..logs import get_logger
from ..runtime import Runtime

log = get_logger("startup")
MAX_PAUSE = 10.0


@dataclass
class Startup:
    """Waits for the database (applying the migrations when ``migrate``), then builds the runtime."""

    settings: Settings
    db: Database
    migrate: bool = False
    runtime: Runtime | None = None
    problem: StagingError = field(
        default_factory=lambda: StagingError(
            "database_unavailable", "the service is starting: its database has not answered yet"
        )
    )

    def check(self) -> Runtime:
        """The running runtime, or the reason why there is none yet (raised)."""
        if self.runtime is None:
            raise self.problem
        return self.runtime

    async def run(self) -> Runtime:
        """Try until the database is ready, then build and start the runtime (the caller publishes it)."""
        pause = 0.5
        while True:
            try:
                await run_in_threadpool(self._prepare)
                break
            except SchemaNotCurrent as exc:
                self.problem = StagingError("schema_not_current", str(exc))
            except OperationalError as exc:
                reason = str(exc.orig) if exc.orig is not None else type(exc).__name__
                self.problem = StagingError("database_unavailable", f"the job database does not answer ({reason})")
            log.warning("not ready: %s; trying again in %.1fs", self.problem.detail, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)
        threads = self.settings.worker_threads if self.settings.embedded_worker else 0
        runtime = Runtime(self.settings, self.db, role="api", threads=threads)
        runtime.start()
        return runtime

    def _prepare(self) -> None:
        if self.migrate:
            upgrade(self.db)
        else:
            prepare_database(self.db)
