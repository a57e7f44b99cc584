"""The interface every staging method implements, and what it is given and returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ..config import Settings
from ..paths import Destination, Owner, StorageRoots

Outcome = Literal["succeeded", "skipped"]


@dataclass(frozen=True)
class TransferContext:
    """Everything a method needs to stage one job."""

    job_id: int
    username: str
    source: Path  # real path inside a storage root, checked to exist
    destination: Destination
    roots: StorageRoots
    settings: Settings
    report_progress: Callable[[int, int], None]  # (bytes done, bytes total); may raise to stop
    owner: Owner | None = None  # (uid, gid) of what is created in the user area


@dataclass(frozen=True)
class TransferResult:
    outcome: Outcome
    bytes: int
    checksum: str | None
    read_only: bool | None  # None: not applicable
    files: int = 1
    note: str | None = None


class StagingMethod(ABC):
    """One way of bringing data to a user. Methods are stateless; one instance serves all jobs."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    runs_in_worker: ClassVar[bool] = True
    accepts_directories: ClassVar[bool] = True

    def availability_problem(self, settings: Settings) -> str | None:
        """Why this method cannot run at this site, or None when it can."""
        return None

    def destination_label(self, username: str, destination: Destination, settings: Settings) -> str:
        """Where the data lands, as the job shows it."""
        return str(destination.path)

    def check_source(self, source: Path, settings: Settings) -> None:  # noqa: B027 - optional hook
        """Method-specific checks run at submission, before a job is queued."""

    @abstractmethod
    def stage(self, ctx: TransferContext) -> TransferResult:
        """Stage ``ctx.source`` to ``ctx.destination``: duplicate check, transfer, verify, read-only."""
