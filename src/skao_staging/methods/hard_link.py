"""symlink_copy (the seed's name): a hard link to the archive file, no data copied.

A hard link shares the source's inode, so its mode is the source's. The service never changes a
source's mode: a source with any write bit is refused (409 ``source_writable``), because linking it
would hand users a writable path to archive data. ``STAGING_HARDLINK_WRITABLE_SOURCE=allow`` links
it anyway and records ``read_only = false`` in the job.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..config import Settings
from ..errors import StagingError
from ..sources import PlannedFile, SourcePlan
from .base import FileChecksum, TransferContext
from .local import LocalMethod, Progress

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def _writable(path: Path) -> bool:
    return bool(path.stat().st_mode & _WRITE_BITS)


class HardLink(LocalMethod):
    name = "symlink_copy"
    description = "Hard-link the archive file into your user area (instant, no extra space)."
    places_atomically = True

    def check_source(self, plan: SourcePlan, settings: Settings) -> None:
        if not plan.is_dir:  # a folder's files are checked in the worker, where it is walked anyway
            self._refuse_writable(plan, settings)

    def check_plan(self, ctx: TransferContext) -> None:
        self._refuse_writable(ctx.plan, ctx.settings)

    def _refuse_writable(self, plan: SourcePlan, settings: Settings) -> None:
        if settings.hardlink_writable_source == "refuse" and any(_writable(entry.real) for entry in plan.files):
            raise StagingError(
                "source_writable",
                "the source is writable, so a hard link to it would not be read-only; use local_copy",
            )

    def result_read_only(self, plan: SourcePlan) -> bool:
        return not any(_writable(entry.real) for entry in plan.files)

    def compare_file(self, source: PlannedFile, dir_fd: int, name: str) -> FileChecksum | None:
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        wanted = source.real.stat()
        same = (existing.st_dev, existing.st_ino) == (wanted.st_dev, wanted.st_ino)
        return FileChecksum(source, None) if same else None

    def place_file(self, source: PlannedFile, dir_fd: int, name: str, ctx: TransferContext, progress: Progress) -> None:
        try:
            os.link(source.real, name, dst_dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise StagingError(
                    "link_not_possible",
                    "the storage and the user area are different filesystems here; use local_copy",
                ) from exc
            if exc.errno == errno.EPERM:
                raise StagingError("link_not_permitted", "the system does not allow linking this file") from exc
            raise
        progress(source.size)
        return None
