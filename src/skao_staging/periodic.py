"""A task repeated on its own thread: the heartbeat, the reaper, the notifier, the replication watch.

A failing round is logged and the task runs again at its next interval; ``stop`` ends the thread
after the round in progress (long rounds look at ``stopping`` between items).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from .logs import get_logger

log = get_logger("periodic")


class Periodic(ABC):
    """Calls ``tick`` every ``interval`` seconds on a daemon thread named ``name`` until stopped."""

    def __init__(self, name: str, interval: float, join_seconds: float = 30.0) -> None:
        self.name, self.interval, self.join_seconds = name, interval, join_seconds
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"staging-{name}", daemon=True)

    @abstractmethod
    def tick(self) -> None:
        """One round of the task."""

    def stopped(self) -> None:  # noqa: B027 - optional hook
        """Called once the thread ended (e.g. to give up a lead)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.join_seconds)
        self.stopped()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.error("the %s failed; trying again in %.1fs", self.name, self.interval, exc_info=True)
