"""The flow shared by the methods that write into a mounted user area (local_copy, symlink_copy).

duplicate check -> transfer to a temporary name -> verify -> read-only -> publish without replacing.
A folder is staged whole into a temporary folder and renamed into place at the end.
"""

from __future__ import annotations

import os
import stat
from abc import abstractmethod
from collections.abc import Callable
from contextlib import ExitStack
from typing import ClassVar

from ..checksum import format_adler32, manifest_checksum
from ..config import Settings
from ..errors import DestinationAppeared, StagingError
from ..fsops import publish_dir, publish_file, remove_entry, temp_name
from ..paths import DIR_MODE, SourceEntry, open_dir_at, open_parent
from .base import Outcome, StagingMethod, TransferContext, TransferResult
from .tree import DirCache, FileMatch, SourcePlan, list_tree


class LocalMethod(StagingMethod):
    """Template for methods that place files with a descriptor-level primitive."""

    places_atomically: ClassVar[bool] = False  # True: place_file can target the final name

    def check_plan(self, plan: SourcePlan, settings: Settings) -> None:
        """Refuse a source before anything is written (e.g. a writable file to hard-link)."""

    @abstractmethod
    def compare_file(self, source: SourceEntry, dir_fd: int, name: str) -> FileMatch:
        """Does the existing file ``name`` already hold ``source`` as this method would stage it?"""

    @abstractmethod
    def place_file(
        self,
        source: SourceEntry,
        dir_fd: int,
        name: str,
        ctx: TransferContext,
        progress: Callable[[int], None],
    ) -> int | None:
        """Create ``name`` below ``dir_fd`` from ``source``; return its adler32 if computed."""

    def result_read_only(self, plan: SourcePlan) -> bool:
        return True

    def stage(self, ctx: TransferContext) -> TransferResult:
        plan = SourcePlan.of(ctx.source, ctx.roots)
        self.check_plan(plan, ctx.settings)
        name, temp = ctx.destination.name, temp_name(ctx.job_id)
        with open_parent(ctx.destination, owner=ctx.owner) as parent_fd:
            remove_entry(parent_fd, temp)  # left by an earlier attempt that died
            if skipped := self._skip_if_present(plan, parent_fd, name):
                return skipped
            try:
                return self._transfer(plan, parent_fd, name, temp, ctx)
            except DestinationAppeared:
                if skipped := self._skip_if_present(plan, parent_fd, name):
                    return skipped
                raise self._conflict() from None
            finally:
                remove_entry(parent_fd, temp)

    def _conflict(self) -> StagingError:
        return StagingError("destination_exists", "the destination already holds different content")

    def _skip_if_present(self, plan: SourcePlan, parent_fd: int, name: str) -> TransferResult | None:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if plan.is_dir and stat.S_ISDIR(st.st_mode):
            checksums = self._compare_tree(plan, parent_fd, name)
        elif not plan.is_dir and stat.S_ISREG(st.st_mode):
            match = self.compare_file(plan.entries[0], parent_fd, name)
            checksums = [("", plan.entries[0].size, match.adler)] if match.same else None
        else:
            checksums = None
        if checksums is None:
            raise self._conflict()
        return self._result("skipped", plan, checksums)

    def _compare_tree(self, plan: SourcePlan, parent_fd: int, name: str) -> list[tuple[str, int, int | None]] | None:
        with ExitStack() as stack:
            top_fd = open_dir_at(parent_fd, name, create=False)
            stack.callback(os.close, top_fd)
            existing = dict(list_tree(top_fd))
            wanted = {entry.parts: "dir" if entry.is_dir else "file" for entry in plan.entries}
            if existing != wanted:
                return None
            dirs = DirCache(stack, top_fd)
            checksums: list[tuple[str, int, int | None]] = []
            for entry in plan.files:
                match = self.compare_file(entry, dirs.fd(entry.parts[:-1]), entry.parts[-1])
                if not match.same:
                    return None
                checksums.append(("/".join(entry.parts), entry.size, match.adler))
            return checksums

    def _transfer(self, plan: SourcePlan, parent_fd: int, name: str, temp: str, ctx: TransferContext) -> TransferResult:
        total, done = plan.bytes_total, [0]

        def progress_of_file(file_done: int) -> None:
            ctx.report_progress(done[0] + file_done, total)

        ctx.report_progress(0, total)
        if not plan.is_dir:
            entry = plan.entries[0]
            target = name if self.places_atomically else temp
            try:
                adler = self.place_file(entry, parent_fd, target, ctx, progress_of_file)
            except FileExistsError:
                raise DestinationAppeared(name) from None
            if not self.places_atomically:
                publish_file(parent_fd, temp, name)
            return self._result("succeeded", plan, [("", entry.size, adler)])

        checksums: list[tuple[str, int, int | None]] = []
        os.mkdir(temp, 0o700, dir_fd=parent_fd)  # private until it is complete
        if ctx.owner is not None:
            os.chown(temp, *ctx.owner, dir_fd=parent_fd, follow_symlinks=False)
        with ExitStack() as stack:
            top_fd = open_dir_at(parent_fd, temp, create=False)
            stack.callback(os.close, top_fd)
            dirs = DirCache(stack, top_fd)
            for entry in plan.entries:
                dir_fd = dirs.fd(entry.parts[:-1])
                if entry.is_dir:
                    os.mkdir(entry.parts[-1], DIR_MODE, dir_fd=dir_fd)
                    if ctx.owner is not None:
                        os.chown(entry.parts[-1], *ctx.owner, dir_fd=dir_fd, follow_symlinks=False)
                    continue
                adler = self.place_file(entry, dir_fd, entry.parts[-1], ctx, progress_of_file)
                done[0] += entry.size
                checksums.append(("/".join(entry.parts), entry.size, adler))
            os.fchmod(top_fd, DIR_MODE)
        publish_dir(parent_fd, temp, name)
        return self._result("succeeded", plan, checksums)

    def _result(
        self, outcome: Outcome, plan: SourcePlan, checksums: list[tuple[str, int, int | None]]
    ) -> TransferResult:
        checksum: str | None = None
        known = [(path, size, adler) for path, size, adler in checksums if adler is not None]
        if len(known) == len(checksums):
            checksum = format_adler32(known[0][2]) if not plan.is_dir else manifest_checksum(known)
        return TransferResult(
            outcome=outcome,
            bytes=plan.bytes_total,
            checksum=checksum,
            read_only=self.result_read_only(plan),
            files=len(plan.files),
        )
