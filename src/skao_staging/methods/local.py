"""The methods that write into a mounted user area (local_copy, symlink_copy), on descriptors.

A file is placed at a temporary name and linked into place; a folder is staged whole into a
private temporary folder and renamed into place at the end. ``place_file`` is what differs.
"""

from __future__ import annotations

import errno
import os
import stat
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import ClassVar

from ..errors import DestinationAppeared, StagingError
from ..fsops import (
    DIR_MODE,
    DirCache,
    list_tree,
    make_dir,
    open_dir_at,
    open_parent,
    publish_dir,
    publish_file,
    remove_empty_dir,
    remove_entry,
    sync_filesystem,
    temp_name,
    unlink_if_same,
)
from ..logs import get_logger
from ..sources import PlannedFile, SourcePlan
from .base import (
    EndedJob,
    FileChecksum,
    HeldAmong,
    HeldData,
    PublishedEntry,
    PublishingMethod,
    Released,
    StageOutcome,
    TransferContext,
    TransferResult,
    outcome_of,
)

Progress = Callable[[int], None]  # bytes of the current file done
log = get_logger("methods")


def file_identity(st: os.stat_result) -> str:
    """device:inode:mtime_ns: what recognises a file the service published (its content may be lost)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}"


def _published_by_us(st: os.stat_result, identity: str | None) -> bool:
    """Whether a file is still the one the service published, only damaged (as by a power cut).

    Same device and inode, still read-only, and not modified after it was published: a user's
    change bumps the modification time (and needs a write bit), a lost write can only set it back.
    """
    if identity is None:
        return False
    device, inode, mtime_ns = (int(part) for part in identity.split(":"))
    return (
        (st.st_dev, st.st_ino) == (device, inode)
        and st.st_mtime_ns <= mtime_ns
        and not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    )


_NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR)
PARALLEL_RELEASE_FILES = 2000  # a release of more files than this unlinks on RELEASE_THREADS threads
RELEASE_THREADS = 4
_KEPT = {
    "changed": "'{}' was modified after it was staged; kept",
    "replaced": "'{}' is no longer the staged file (replaced or moved); kept",
}


class LocalMethod(PublishingMethod[int]):
    """Stages below a descriptor of the destination's folder; subclasses place each file."""

    places_atomically: ClassVar[bool] = False  # True: place_file can target the final name
    releasable = True
    batches = True

    def release(self, held: HeldData) -> Released:
        """Unlink the files the job published that are unchanged, then its folders emptied of them.

        Walked by descriptor from the user area without following symlinks, as staging is; a hard
        link is only a name removed, never the archive's file.
        """
        released = Released()
        files = [entry for entry in held.entries if entry.identity is not None]
        try:
            with open_parent(held.destination, create=False) as parent_fd:
                if held.is_dir:
                    _release_tree(parent_fd, held.destination.name, held.entries, released)
                else:
                    _release_file(parent_fd, held.destination.name, files[0], "", released)
        except (FileNotFoundError, NotADirectoryError):
            released.gone += len(files)
        except StagingError as error:
            if error.code != "destination_not_found":
                released.kept.append(f"nothing removed: {error.detail}")
            else:
                released.gone += len(files)
        return released

    @abstractmethod
    def compare_file(self, source: PlannedFile, dir_fd: int, name: str) -> FileChecksum | None:
        """``source``'s checksum when ``name`` already holds it as this method stages it, else None."""

    @abstractmethod
    def place_file(
        self, source: PlannedFile, dir_fd: int, name: str, ctx: TransferContext, progress: Progress
    ) -> int | None:
        """Create ``name`` below ``dir_fd`` from ``source``; return its adler32 if computed."""

    @contextmanager
    def open_target(self, ctx: TransferContext) -> Iterator[int]:
        with open_parent(ctx.destination, owner=ctx.owner, durable=ctx.settings.fsync) as parent_fd:
            yield parent_fd

    def remove_temporary(self, target: int, ctx: TransferContext, attempt: int) -> None:
        remove_entry(target, temp_name(ctx.job_id, attempt))

    def remove_leftovers(self, ended: EndedJob) -> None:
        try:
            with open_parent(ended.destination, create=False) as parent_fd:
                for attempt in range(1, ended.attempts + 1):
                    remove_entry(parent_fd, temp_name(ended.job_id, attempt))
        except (FileNotFoundError, StagingError):
            pass  # the destination's folder is gone, and with it anything the job left there

    def existing(self, target: int, ctx: TransferContext) -> list[FileChecksum] | None:
        plan, name = ctx.plan, ctx.destination.name
        try:
            st = os.stat(name, dir_fd=target, follow_symlinks=False)
        except FileNotFoundError:
            return None
        found: list[FileChecksum] | None = None
        if plan.is_dir and stat.S_ISDIR(st.st_mode):
            found = self._compare_tree(plan, target, name)
        elif not plan.is_dir and stat.S_ISREG(st.st_mode):
            match = self.compare_file(plan.entries[0], target, name)
            if match is None and self.repairs_own_output and _published_by_us(st, ctx.published_identity()):
                log.warning("job %s: %s no longer holds what this service published; staged again", ctx.job_id, name)
                os.unlink(name, dir_fd=target)
                return None
            found = None if match is None else [match]
        if found is None:
            raise self.conflict()
        return found

    def _compare_tree(self, plan: SourcePlan, parent_fd: int, name: str) -> list[FileChecksum] | None:
        with ExitStack() as stack:
            top_fd = open_dir_at(parent_fd, name, create=False)
            stack.callback(os.close, top_fd)
            existing = dict(list_tree(top_fd))
            wanted = {entry.parts: "dir" if entry.is_dir else "file" for entry in plan.entries}
            if existing != wanted:
                return None
            dirs = DirCache(stack, top_fd)
            checksums: list[FileChecksum] = []
            for entry in plan.files:
                match = self.compare_file(entry, dirs.fd(entry.parts[:-1]), entry.parts[-1])
                if match is None:
                    return None
                checksums.append(match)
            return checksums

    def transfer(self, target: int, ctx: TransferContext) -> list[FileChecksum]:
        plan, name, temp = ctx.plan, ctx.destination.name, temp_name(ctx.job_id, ctx.attempt)
        total, done, durable = plan.bytes_total, [0], ctx.settings.fsync

        def progress_of_file(file_done: int) -> None:
            ctx.report_progress(done[0] + file_done, total)

        ctx.report_progress(0, total)
        if not plan.is_dir:
            entry = plan.entries[0]
            try:
                adler = self.place_file(entry, target, name if self.places_atomically else temp, ctx, progress_of_file)
            except FileExistsError:
                raise DestinationAppeared(name) from None
            if self.places_atomically:
                if durable:
                    os.fsync(target)
            else:
                ctx.confirm_held()
                publish_file(target, temp, name, durable=durable)
            return [FileChecksum(entry, adler, file_identity(os.stat(name, dir_fd=target, follow_symlinks=False)))]

        checksums: list[FileChecksum] = []
        make_dir(target, temp, 0o700, ctx.owner)  # private until it is complete
        with ExitStack() as stack:
            top_fd = open_dir_at(target, temp, create=False)
            stack.callback(os.close, top_fd)
            dirs = DirCache(stack, top_fd)
            for entry in plan.entries:
                dir_fd = dirs.fd(entry.parts[:-1])
                if entry.is_dir:
                    make_dir(dir_fd, entry.parts[-1], owner=ctx.owner)
                    continue
                adler = self.place_file(entry, dir_fd, entry.parts[-1], ctx, progress_of_file)
                done[0] += entry.size
                placed = os.stat(entry.parts[-1], dir_fd=dir_fd, follow_symlinks=False)
                checksums.append(FileChecksum(entry, adler, file_identity(placed)))
            os.fchmod(top_fd, DIR_MODE)
            if durable:  # the files were not flushed one by one (see LocalCopy.place_file)
                sync_filesystem(top_fd)
        ctx.confirm_held()
        publish_dir(target, temp, name, durable=durable)
        return checksums

    def stage_batch(self, contexts: Sequence[TransferContext], held_among: HeldAmong) -> list[StageOutcome]:
        """Stage one-file jobs together as a folder's files are: each placed unflushed, their data flushed
        once, one fence for all before publishing, their names flushed once. Each job keeps the checks
        and outcomes of ``stage``; a folder among them is staged alone.
        """
        outcomes: dict[int, StageOutcome] = {}
        placed: list[tuple[TransferContext, int, int | None]] = []  # job, its folder's descriptor, adler32
        with ExitStack() as stack:
            targets = _Targets(self, stack)
            for ctx in contexts:
                if ctx.plan.is_dir:
                    outcomes[ctx.job_id] = outcome_of(self.stage, ctx)
                    continue
                try:
                    target = targets.of(ctx)
                    if (found := self.already_there(target, ctx)) is not None:
                        outcomes[ctx.job_id] = self.finished(ctx, "skipped", found)
                    else:
                        placed.append((ctx, target, self._place_unflushed(target, ctx)))
                except DestinationAppeared:
                    outcomes[ctx.job_id] = self._appeared_outcome(target, ctx)
                except Exception as exc:  # this job ends by what it raised; the others go on
                    outcomes[ctx.job_id] = exc
                    targets.drop_temporary(ctx)
            try:
                if not self.places_atomically:  # the data, before any name points at it
                    targets.flush([target for _, target, _ in placed])
                held = self._still_held(held_among, [ctx for ctx, _, _ in placed])
                for ctx, target, adler in placed:
                    outcomes[ctx.job_id] = self._publish(ctx, target, adler, held)
                targets.flush([target for ctx, target, _ in placed if _published(outcomes[ctx.job_id])])
            finally:  # whatever happened, no temporary stays (a flush that failed fails the whole batch)
                for ctx, target, _ in placed:
                    self.drop_temporary(target, ctx)
        return [outcomes[ctx.job_id] for ctx in contexts]

    def _place_unflushed(self, target: int, ctx: TransferContext) -> int | None:
        entry, name = ctx.plan.entries[0], ctx.destination.name
        temp = name if self.places_atomically else temp_name(ctx.job_id, ctx.attempt)
        ctx.report_progress(0, entry.size)
        try:
            return self.place_file(entry, target, temp, ctx, lambda done: ctx.report_progress(done, entry.size))
        except FileExistsError:
            raise DestinationAppeared(name) from None

    def _still_held(self, held_among: HeldAmong, contexts: list[TransferContext]) -> set[int]:
        if self.places_atomically or not contexts:
            return set()  # placing was publishing: nothing is left to fence
        try:
            return held_among(contexts)
        except Exception:  # each job then confirms its claim on its own
            log.warning("the fence of a batch of %d jobs failed; each confirms its claim alone", len(contexts))
            return set()

    def _publish(self, ctx: TransferContext, target: int, adler: int | None, held: set[int]) -> StageOutcome:
        """Publish one placed job of a batch (unflushed): its result, or what it raised."""
        name = ctx.destination.name
        try:
            if not self.places_atomically:
                if ctx.job_id not in held:
                    ctx.confirm_held()  # raises when another attempt took the job
                publish_file(target, temp_name(ctx.job_id, ctx.attempt), name)
            identity = file_identity(os.stat(name, dir_fd=target, follow_symlinks=False))
            return self.finished(ctx, "succeeded", [FileChecksum(ctx.plan.entries[0], adler, identity)])
        except DestinationAppeared:
            return self._appeared_outcome(target, ctx)
        except Exception as exc:  # this job ends by what it raised; the others go on
            return exc

    def _appeared_outcome(self, target: int, ctx: TransferContext) -> StageOutcome:
        return outcome_of(lambda ctx: self.finished(ctx, "skipped", self.appeared(target, ctx)), ctx)


def _published(outcome: StageOutcome) -> bool:
    return isinstance(outcome, TransferResult) and outcome.outcome == "succeeded"


class _Targets:
    """The destination folders of a batch, each opened once, and their filesystems flushed once."""

    def __init__(self, method: LocalMethod, stack: ExitStack) -> None:
        self.method, self.stack = method, stack
        self._by_folder: dict[str, int] = {}
        self._of_job: dict[int, int] = {}
        self._durable = False

    def of(self, ctx: TransferContext) -> int:
        folder = str(ctx.destination.path.parent)
        if folder not in self._by_folder:
            self._by_folder[folder] = self.stack.enter_context(self.method.open_target(ctx))
        self._of_job[ctx.job_id] = self._by_folder[folder]
        self._durable = ctx.settings.fsync
        return self._by_folder[folder]

    def drop_temporary(self, ctx: TransferContext) -> None:
        if (target := self._of_job.get(ctx.job_id)) is not None:
            self.method.drop_temporary(target, ctx)

    def flush(self, targets: list[int]) -> None:
        """One ``syncfs`` per filesystem among ``targets`` (none where the site does not flush)."""
        if not self._durable:
            return
        flushed: set[int] = set()
        for target in targets:
            if (device := os.fstat(target).st_dev) not in flushed:
                sync_filesystem(target)
                flushed.add(device)


def _release_file(dir_fd: int, name: str, entry: PublishedEntry, prefix: str, released: Released) -> None:
    """``prefix``: the staged folder's name and a slash, for the report of a file kept (none for one file)."""
    state = unlink_if_same(dir_fd, name, str(entry.identity), entry.size)
    if state == "removed":
        released.removed += 1
    elif state == "gone":
        released.gone += 1
    else:
        released.kept.append(_KEPT[state].format(prefix + (entry.path or name)))


def _release_files(placed: list[tuple[int, str, PublishedEntry]], prefix: str, released: Released) -> None:
    """Check and unlink files, on a few threads for a large tree (the system calls run in parallel)."""
    if len(placed) < PARALLEL_RELEASE_FILES:
        for dir_fd, name, entry in placed:
            _release_file(dir_fd, name, entry, prefix, released)
        return

    def release_share(share: list[tuple[int, str, PublishedEntry]]) -> Released:
        found = Released()
        for dir_fd, name, entry in share:
            _release_file(dir_fd, name, entry, prefix, found)
        return found

    shares = [placed[start::RELEASE_THREADS] for start in range(RELEASE_THREADS)]
    with ThreadPoolExecutor(RELEASE_THREADS, thread_name_prefix="staging-release") as pool:
        for found in pool.map(release_share, shares):
            released.removed += found.removed
            released.gone += found.gone
            released.kept.extend(found.kept)


def _release_tree(parent_fd: int, name: str, entries: list[PublishedEntry], released: Released) -> None:
    """Unlink a folder job's unchanged files, then remove its folders that are empty, deepest first."""
    try:
        top_fd = open_dir_at(parent_fd, name, create=False)
    except FileNotFoundError:
        released.gone += sum(1 for entry in entries if entry.identity is not None)
        return
    except OSError as exc:  # a symlink or a file now stands at the folder's name: it is not followed
        if exc.errno not in _NOT_A_FOLDER:
            raise
        released.kept.append(f"'{name}' is no longer the staged folder; kept")
        return
    prefix = f"{name}/"
    with ExitStack() as stack:
        stack.callback(os.close, top_fd)
        dirs = DirCache(stack, top_fd)
        placed: list[tuple[int, str, PublishedEntry]] = []  # each file's folder descriptor and name
        for entry in entries:
            if entry.identity is None:
                continue
            parts = tuple(entry.path.split("/"))
            try:
                placed.append((dirs.fd(parts[:-1]), parts[-1], entry))
            except FileNotFoundError:
                released.gone += 1
            except OSError as exc:
                if exc.errno not in _NOT_A_FOLDER:
                    raise
                released.kept.append(_KEPT["replaced"].format(f"{name}/{entry.path}"))
        _release_files(placed, prefix, released)
        folders = sorted((tuple(entry.path.split("/")) for entry in entries if entry.identity is None), key=len)
        for parts in reversed(folders):
            try:
                dir_fd = dirs.fd(parts[:-1])
            except OSError:
                continue  # its parent is gone or was replaced: reported with its files
            if not remove_empty_dir(dir_fd, parts[-1]):
                released.kept.append(f"folder '{'/'.join((name, *parts))}' is not empty or was replaced; kept")
    if not remove_empty_dir(parent_fd, name):
        released.kept.append(f"folder '{name}' is not empty or was replaced; kept")
