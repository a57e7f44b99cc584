"""symlink_copy (the seed's name): a hard link to the archive file, no data copied.

A hard link shares the source's inode, so its mode is the source's, and the service never changes
a source's mode. A link is refused (409 ``source_writable``) only when the owner of the staged
result could write the shared inode through it: its uid with ``u+w``, one of its groups with
``g+w``, or anyone with ``o+w``. The owner is the configured or token uid/gid, else the service's
own. An archive file of another account with mode 0644 is read-only for the user and is linked.
``STAGING_HARDLINK_WRITABLE_SOURCE=allow`` links even writable ones and records ``read_only = false``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..checksum import adler32_of_file
from ..config import Settings
from ..copier import check_against_catalogue
from ..errors import StagingError
from ..paths import Owner
from ..sources import PlannedFile, SourcePlan
from .base import FileChecksum, Outcome, TransferContext
from .local import LocalMethod, Progress


def _result_owner(owner: Owner | None) -> tuple[int, frozenset[int]]:
    """The uid that will own the staged result, and its groups."""
    uid = owner[0] if owner is not None and owner[0] != -1 else os.geteuid()
    gid = owner[1] if owner is not None and owner[1] != -1 else os.getegid()
    groups = {gid}
    if uid == os.geteuid():
        groups.update(os.getgroups())
    return uid, frozenset(groups)


def writable_by(path: Path, owner: Owner | None) -> bool:
    """Whether the owner of the staged result could write ``path`` (its mode bits, not root's powers)."""
    st = path.stat()
    uid, groups = _result_owner(owner)
    return bool(
        (st.st_uid == uid and st.st_mode & stat.S_IWUSR)
        or (st.st_gid in groups and st.st_mode & stat.S_IWGRP)
        or st.st_mode & stat.S_IWOTH
    )


class HardLink(LocalMethod):
    name = "symlink_copy"
    description = "Hard-link the archive file into your user area (instant, no extra space)."
    places_atomically = True

    def check_source(self, plan: SourcePlan, settings: Settings, owner: Owner | None = None) -> None:
        if not plan.is_dir:  # a folder's files are checked in the worker, where it is walked anyway
            self._refuse_writable(plan, settings, owner)

    def check_plan(self, ctx: TransferContext) -> None:
        self._refuse_writable(ctx.plan, ctx.settings, ctx.owner)

    def _refuse_writable(self, plan: SourcePlan, settings: Settings, owner: Owner | None) -> None:
        if settings.hardlink_writable_source == "refuse" and any(writable_by(e.real, owner) for e in plan.files):
            raise StagingError(
                "source_writable",
                "the user could write the archive file through a hard link; use local_copy",
            )

    def read_only(self, ctx: TransferContext, outcome: Outcome) -> tuple[bool | None, str | None]:
        if ctx.settings.hardlink_writable_source == "refuse":
            return True, None  # check_plan refused any file the owner could write
        return not any(writable_by(entry.real, ctx.owner) for entry in ctx.plan.files), None

    def compare_file(self, source: PlannedFile, dir_fd: int, name: str) -> FileChecksum | None:
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        wanted = source.real.stat()
        same = (existing.st_dev, existing.st_ino) == (wanted.st_dev, wanted.st_ino)
        return FileChecksum(source, None) if same else None

    def place_file(self, source: PlannedFile, dir_fd: int, name: str, ctx: TransferContext, progress: Progress) -> None:
        if ctx.settings.rucio_verify_links and source.expected_adler32 is not None:
            check_against_catalogue(source, adler32_of_file(source.real))
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
