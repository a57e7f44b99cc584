"""The archive path: ``local_path_on_storage``, a file or folder inside a storage root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import StagingError
from ..paths import StorageRoots
from .base import PlannedFile, Source, SourcePlan


class ArchivePath(Source):
    field = "local_path_on_storage"

    def __init__(self, roots: StorageRoots) -> None:
        self.roots = roots

    def plan(self, raw: str | None, groups: frozenset[str] | None, pin: str | None = None) -> SourcePlan:
        real = self.roots.resolve_readable(raw, groups)
        if not real.is_dir():
            return SourcePlan.single_file(real, real.stat().st_size)
        return SourcePlan(real, True, lambda: walk_folder(real, self.roots))


def walk_folder(top: Path, roots: StorageRoots) -> list[PlannedFile]:
    """List a source folder depth-first (folders before their content); symlinks must stay in storage."""
    entries: list[PlannedFile] = []
    seen_dirs: set[tuple[int, int]] = set()

    def visit(folder: Path, prefix: tuple[str, ...]) -> None:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen_dirs:
            raise StagingError("unsupported_source", "the source folder contains a symlink loop")
        seen_dirs.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as listing:
            children = sorted(listing, key=lambda entry: entry.name)
        for child in children:
            real = Path(child.path)  # inside storage: the real path of a folder inside storage, and a name
            if child.is_symlink():
                real = Path(os.path.realpath(child.path))
                if not roots.contains(real):
                    raise StagingError("source_outside_storage", "a symlink in the source folder leads outside storage")
            child_stat = os.stat(real)
            parts = (*prefix, child.name)
            if stat.S_ISDIR(child_stat.st_mode):
                entries.append(PlannedFile(parts, real, True, 0))
                visit(real, parts)
            elif stat.S_ISREG(child_stat.st_mode):
                entries.append(PlannedFile(parts, real, False, child_stat.st_size))
            else:
                raise StagingError("unsupported_source", "the source folder holds a special file")

    visit(top, ())
    return entries
