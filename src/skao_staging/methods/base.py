"""The interface every staging method implements, and the one skeleton of those that publish a result.

A method stages a plan of files (``sources``) to a destination; it never knows which source kind
made the plan. Methods that publish into an area (``PublishingMethod``) share one pipeline:

    remove a stale temporary -> skip if already there -> transfer to a temporary -> publish
    -> (destination appeared meanwhile: skip if it is the same, else conflict) -> remove the temporary

and fill its hooks with how they reach the area (a folder descriptor, or a Jupyter server).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Literal, NamedTuple, TypeVar

from ..checksum import format_adler32, manifest_checksum
from ..config import Settings
from ..errors import DestinationAppeared, StagingError
from ..paths import Destination, Owner
from ..sources import PlannedFile, SourcePlan

Outcome = Literal["succeeded", "skipped"]


@dataclass(frozen=True)
class TransferContext:
    """Everything a method needs to stage one job."""

    job_id: int
    username: str
    plan: SourcePlan
    destination: Destination
    settings: Settings
    report_progress: Callable[[int, int], None]  # (bytes done, bytes total); may raise to stop
    attempt: int = 1  # this attempt's number: its temporaries are its own
    # asked only when the destination is taken: the identity of the file the service published there
    # before, if any (see LocalCopy)
    published_identity: Callable[[], str | None] = lambda: None
    confirm_held: Callable[[], None] = lambda: None  # raises when another attempt took the job; called to publish
    owner: Owner | None = None  # (uid, gid) of what is created in the user area
    batched: bool = False  # staged with other one-file jobs (stage_batch): flushed with them, not alone

    @property
    def flushes_alone(self) -> bool:
        """Whether this job flushes its own file to disk (not a folder's file, nor one of a batch)."""
        return self.settings.fsync and not self.plan.is_dir and not self.batched


@dataclass(frozen=True)
class EndedJob:
    """A job that ended outside a running attempt (its process died, or it was cancelled while queued).

    Temporaries of its attempts 1..``attempts`` may remain at its destination.
    """

    job_id: int
    username: str
    destination: Destination
    settings: Settings
    attempts: int


class PublishedEntry(NamedTuple):
    """A file or folder a job published, as it was then: what its release may remove.

    A tuple: a folder job's release reads one per file, 100,000 of them for a large tree.
    """

    path: str  # "/"-separated inside the staged item; "" for the item itself when it is one file
    identity: str | None  # device:inode:mtime_ns of a file; None for a folder
    size: int | None


@dataclass(frozen=True)
class HeldData:
    """The staged data of a job, to be released: where it lies and what was published there."""

    job_id: int
    username: str
    destination: Destination
    is_dir: bool
    entries: list[PublishedEntry]
    settings: Settings
    requested: bool = False  # released on request (not expired): a method may start what it needs


class ReleasePostponed(Exception):
    """The data cannot be reached now (the user's Jupyter server is stopped); try again later."""


MAX_KEPT_REPORTED = 20


@dataclass
class Released:
    """What a release removed, and what it left in place and why."""

    removed: int = 0  # files
    gone: int = 0  # files no longer there (removed by the user, or by an interrupted release)
    kept: list[str] = field(default_factory=list)  # one sentence per file or folder left in place

    def note(self) -> str | None:
        """The record of what was not removed, for the job (None when everything was)."""
        parts = list(self.kept[:MAX_KEPT_REPORTED])
        if len(self.kept) > MAX_KEPT_REPORTED:
            parts.append(f"and {len(self.kept) - MAX_KEPT_REPORTED} more kept")
        if self.gone:
            parts.append(f"{self.gone} file(s) were no longer there")
        return "; ".join(parts) or None


@dataclass(frozen=True)
class TransferResult:
    outcome: Outcome
    bytes: int
    checksum: str | None
    read_only: bool | None  # None: not applicable
    files: int = 1
    note: str | None = None
    output_identity: str | None = None  # device:inode:mtime_ns of a published copy of one file
    outputs: list[PublishedEntry] = field(default_factory=list)  # what a folder job published


@dataclass(frozen=True)
class FileChecksum:
    """A staged file's adler32 (None where the method computed none, as a hard link)."""

    entry: PlannedFile
    adler32: int | None
    identity: str | None = None  # device:inode:mtime_ns, where the method recognises its own output

    @property
    def path(self) -> str:
        return "/".join(self.entry.parts)


StageOutcome = TransferResult | Exception  # a job's result in a batch, or what it raised
HeldAmong = Callable[[Sequence[TransferContext]], set[int]]  # the job ids whose attempt still holds its job


class StagingMethod(ABC):
    """One way of bringing data to a user. Methods are stateless; one instance serves all jobs."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    runs_in_worker: ClassVar[bool] = True
    repairs_own_output: ClassVar[bool] = False  # replaces its own earlier result that no longer matches
    releasable: ClassVar[bool] = False  # publishes data the service removes again when it expires
    accepts_directories: ClassVar[bool] = True
    batches: ClassVar[bool] = False  # stage_batch shares work between one-file jobs: workers claim them together

    def availability_problem(self, settings: Settings) -> str | None:
        """Why this method cannot run at this site, or None when it can."""
        return None

    def destination_label(self, username: str, destination: Destination, settings: Settings) -> str:
        """Where the data lands, as the job shows it."""
        return str(destination.path)

    def check_source(  # noqa: B027 - optional hook
        self, plan: SourcePlan, settings: Settings, owner: Owner | None = None
    ) -> None:
        """Method-specific checks run at submission, before a job is queued (keep them cheap).

        ``owner``: the (uid, gid) the staged result will belong to (None: the service's own).
        """

    @abstractmethod
    def stage(self, ctx: TransferContext) -> TransferResult:
        """Stage ``ctx.plan`` to ``ctx.destination``: duplicate check, transfer, verify, read-only."""

    def stage_batch(self, contexts: Sequence[TransferContext], held_among: HeldAmong) -> list[StageOutcome]:
        """Stage several one-file jobs of one user, in order; each job's result or what it raised.

        ``held_among``: which of the jobs are still held, asked once before publishing (see ``transfer``).
        """
        return [outcome_of(self.stage, ctx) for ctx in contexts]

    def remove_leftovers(self, ended: EndedJob) -> None:  # noqa: B027 - optional hook
        """Remove what the attempts of an ended job left at its destination (nothing for most methods)."""

    def release(self, held: HeldData) -> Released:
        """Remove the staged data of a job, only what is still as the job published it (``releasable``)."""
        raise NotImplementedError(f"{self.name} publishes nothing to release")


Target = TypeVar("Target")


class PublishingMethod(StagingMethod, Generic[Target]):
    """The skeleton of methods that write a temporary and publish it without replacing anything."""

    @abstractmethod
    def open_target(self, ctx: TransferContext) -> AbstractContextManager[Target]:
        """Reach the destination's folder (created if needed) for the duration of the staging."""

    @abstractmethod
    def remove_temporary(self, target: Target, ctx: TransferContext, attempt: int) -> None:
        """Remove the temporary of ``attempt`` of this job, if there is one."""

    @abstractmethod
    def existing(self, target: Target, ctx: TransferContext) -> list[FileChecksum] | None:
        """None when the destination is free; its checksums when it holds this plan; else raise ``conflict()``."""

    @abstractmethod
    def transfer(self, target: Target, ctx: TransferContext) -> list[FileChecksum]:
        """Write the plan to the temporary and publish it; DestinationAppeared when the name was taken.

        ``ctx.confirm_held()`` comes right before publishing: an attempt whose job was taken over
        (its process froze past the lease) publishes nothing.
        """

    def read_only(self, ctx: TransferContext, outcome: Outcome) -> tuple[bool | None, str | None]:
        """Whether the result is read-only for the user (None: not applicable), and a note when it could not be."""
        return True, None

    def check_plan(self, ctx: TransferContext) -> None:
        """Refuse the plan before anything is written (e.g. a writable file to hard-link)."""

    def stage(self, ctx: TransferContext) -> TransferResult:
        ctx.plan.entries  # noqa: B018 - list a folder before anything is written: an unreadable source fails first
        self.check_plan(ctx)
        with self.open_target(ctx) as target:
            outcome, checksums = self._place(target, ctx)
        return self.finished(ctx, outcome, checksums)

    def _place(self, target: Target, ctx: TransferContext) -> tuple[Outcome, list[FileChecksum]]:
        if (found := self.already_there(target, ctx)) is not None:
            return "skipped", found
        try:
            return "succeeded", self.transfer(target, ctx)
        except DestinationAppeared:
            return "skipped", self.appeared(target, ctx)
        finally:
            self.drop_temporary(target, ctx)

    def already_there(self, target: Target, ctx: TransferContext) -> list[FileChecksum] | None:
        """Remove the temporaries of earlier attempts, then ``existing``: the first steps of staging."""
        # Left by earlier attempts that died; the number of a claim given back unstarted or of a
        # refunded attempt is used again, so a temporary of this very number may be stale too.
        for earlier in range(1, ctx.attempt + 1):
            self.remove_temporary(target, ctx, earlier)
        return self.existing(target, ctx)

    def appeared(self, target: Target, ctx: TransferContext) -> list[FileChecksum]:
        """The destination was taken while this job staged: skipped if it holds the plan, else a conflict."""
        if (found := self.existing(target, ctx)) is not None:
            return found
        raise self.conflict() from None

    def drop_temporary(self, target: Target, ctx: TransferContext) -> None:
        """Remove this attempt's temporary, whatever happened to it (the last step of staging)."""
        with suppress(StagingError):  # a remote that fails to clean up does not hide the real outcome
            self.remove_temporary(target, ctx, ctx.attempt)

    def finished(self, ctx: TransferContext, outcome: Outcome, checksums: list[FileChecksum]) -> TransferResult:
        read_only, note = self.read_only(ctx, outcome)
        return self.result(outcome, ctx, checksums, read_only, note)

    @staticmethod
    def conflict() -> StagingError:
        return StagingError("destination_exists", "the destination already holds different content")

    @staticmethod
    def result(
        outcome: Outcome,
        ctx: TransferContext,
        checksums: list[FileChecksum],
        read_only: bool | None,
        note: str | None,
    ) -> TransferResult:
        """The job's record: one file's adler32, or a folder's manifest checksum, when every file has one."""
        plan = ctx.plan
        checksum: str | None = None
        if all(item.adler32 is not None for item in checksums):
            if not plan.is_dir:
                checksum = format_adler32(checksums[0].adler32 or 0)
            else:
                checksum = manifest_checksum((item.path, item.entry.size, item.adler32 or 0) for item in checksums)
        published = outcome == "succeeded"
        identity = checksums[0].identity if published and not plan.is_dir else None
        outputs: list[PublishedEntry] = []
        if published and plan.is_dir:
            outputs = [PublishedEntry(item.path, item.identity, item.entry.size) for item in checksums]
            outputs += [PublishedEntry("/".join(entry.parts), None, None) for entry in plan.entries if entry.is_dir]
        return TransferResult(
            outcome,
            plan.bytes_total,
            checksum,
            read_only,
            files=len(plan.files),
            note=note,
            output_identity=identity,
            outputs=outputs,
        )


def outcome_of(stage: Callable[[TransferContext], TransferResult], ctx: TransferContext) -> StageOutcome:
    try:
        return stage(ctx)
    except Exception as exc:  # the batch's caller ends each job by what it raised
        return exc
