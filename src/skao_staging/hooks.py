"""Hooks: named points where other parts of the process listen (jobs queued, a job ended)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .logs import get_logger

T = TypeVar("T")
log = get_logger("hooks")


class Hook(Generic[T]):
    """Listeners called in order with one value; a failing listener is logged, never raised to the caller."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[[T], None]] = []

    def connect(self, listener: Callable[[T], None]) -> None:
        self._listeners.append(listener)

    def __call__(self, value: T) -> None:
        for listener in self._listeners:
            try:
                listener(value)
            except Exception:
                log.error("a listener of %s failed", self.name, exc_info=True)
