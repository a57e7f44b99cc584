"""What a source kind is: something that turns the user's source string into a plan of files.

A plan lists each file and folder to stage with its local path, its size, the checksum the source
expects when it knows one, and where it lands inside the staged item. Methods stage plans; they never
know which kind of source made one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class PlannedFile:
    """One file or folder of a plan."""

    parts: tuple[str, ...]  # where it lands inside the staged item; () for the item itself
    real: Path  # the local path it is read from, inside a storage root
    is_dir: bool
    size: int
    expected_adler32: int | None = None  # the checksum the source vouches for, when it knows one


@dataclass(frozen=True)
class SourcePlan:
    """What one job reads: a single file, or a folder and everything below it (listed when first needed)."""

    top: Path
    is_dir: bool
    _list: Callable[[], Sequence[PlannedFile]] = field(repr=False, compare=False)
    # what the source looked up to make this plan (a DID's replica), recorded with the job so that
    # running it plans again from the record instead of asking again (see ``Source.plan``)
    pin: str | None = None

    @classmethod
    def single_file(
        cls, real: Path, size: int, expected_adler32: int | None = None, pin: str | None = None
    ) -> SourcePlan:
        entry = PlannedFile((), real, False, size, expected_adler32)
        return cls(real, False, lambda: [entry], pin)

    @cached_property
    def entries(self) -> Sequence[PlannedFile]:
        """Folders before their content, depth-first."""
        return self._list()

    @property
    def files(self) -> list[PlannedFile]:
        return [entry for entry in self.entries if not entry.is_dir]

    @property
    def bytes_total(self) -> int:
        return sum(entry.size for entry in self.entries)


class Source(ABC):
    """A kind of source. ``field`` names the request field (and job column) that carries its string."""

    field: ClassVar[str]

    def expand(self, raw: str | None, groups: frozenset[str] | None = None) -> list[tuple[str, tuple[str, ...]]] | None:
        """A collection named by ``raw`` as its members: (member's string, where it lands below the
        item's destination), expanded when a caller in ``groups`` submits it; None for a single source."""
        return None

    @abstractmethod
    def plan(self, raw: str | None, groups: frozenset[str] | None, pin: str | None = None) -> SourcePlan:
        """Resolve ``raw`` for a caller in ``groups`` (None: unrestricted) into a plan, or raise StagingError.

        Cheap for a single file; a folder's content is listed only when ``entries`` is first read.
        ``pin``: the ``pin`` of the plan made when the job was accepted, so that a source which looked
        something up then (a catalogue) plans from it again; the local checks are made again all the same.
        """
