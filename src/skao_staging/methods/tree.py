"""What a staging reads (a file, or a folder and all below it) and how a destination folder is walked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..paths import SourceEntry, StorageRoots, open_dir_at, walk_source


@dataclass(frozen=True)
class SourcePlan:
    """What a job reads: one file, or a folder and everything below it."""

    top: Path
    is_dir: bool
    entries: list[SourceEntry]

    @classmethod
    def of(cls, source: Path, roots: StorageRoots) -> SourcePlan:
        if source.is_dir():
            return cls(source, True, walk_source(source, roots))
        return cls(source, False, [SourceEntry((), source, False, source.stat().st_size)])

    @property
    def files(self) -> list[SourceEntry]:
        return [entry for entry in self.entries if not entry.is_dir]

    @property
    def bytes_total(self) -> int:
        return sum(entry.size for entry in self.entries)


@dataclass(frozen=True)
class FileMatch:
    same: bool
    adler: int | None = None


class DirCache:
    """Descriptors of the folders of a tree below a top descriptor, opened once each."""

    def __init__(self, stack: ExitStack, top_fd: int) -> None:
        self._stack = stack
        self._fds: dict[tuple[str, ...], int] = {(): top_fd}

    def fd(self, parts: tuple[str, ...]) -> int:
        if parts not in self._fds:
            parent = self.fd(parts[:-1])
            fd = open_dir_at(parent, parts[-1], create=False)
            self._stack.callback(os.close, fd)
            self._fds[parts] = fd
        return self._fds[parts]


def list_tree(dir_fd: int, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Walk an existing destination folder by descriptor: (parts, 'dir' | 'file' | 'other')."""
    with os.scandir(dir_fd) as listing:
        children = list(listing)
    for child in children:
        parts = (*prefix, child.name)
        if child.is_dir(follow_symlinks=False):
            yield parts, "dir"
            child_fd = open_dir_at(dir_fd, child.name, create=False)
            try:
                yield from list_tree(child_fd, parts)
            finally:
                os.close(child_fd)
        elif child.is_file(follow_symlinks=False):
            yield parts, "file"
        else:
            yield parts, "other"
