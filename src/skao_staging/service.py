"""Accepting staging requests, and the verbs the API offers on jobs and requests.

``submit`` validates an item (its source through ``sources``, its destination through ``paths``),
applies the limits and records a queued job, or a failed one with the refusal's code, so that every
request is recorded. Running the jobs is ``execution``'s; routes call only this service.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from .auth import Identity
from .catalogue import Did, DidSummary
from .config import Settings
from .db import Holding, JobStatus, JobStore, NoticeStore, RequestSummary, StagingJob, utcnow
from .errors import StagingError, from_os_error
from .execution import Executor
from .fsops import write_new_file
from .hooks import Hook
from .items import StageItem, storable
from .lifetimes import expiry, lifetime_seconds
from .logs import get_logger
from .methods import MethodRegistry
from .paths import (
    Destination,
    Owner,
    StorageRoots,
    owner_tuple,
    resolve_destination,
    validate_relative_path,
    validate_username,
)
from .reaper import Releaser, ReleaseReason
from .sources import PlannedFile, SourcePlan, Sources
from .worker import Worker

log = get_logger("service")
FILE_TOOL_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UserUsage:
    """Staged data a user holds: by method, what expires within a day, and their quota (None: none)."""

    username: str | None
    held: list[Holding]
    expiring: list[Holding]
    quota_bytes: int | None


def _refusal_of(job: StagingJob) -> StagingError | None:
    """The error of a job refused at submission (failed without an attempt), for a replayed answer."""
    if job.status != JobStatus.FAILED or job.attempts or not job.error_code:
        return None
    return StagingError(job.error_code, job.error_reason or "", job_id=job.id)


class StagingService:
    def __init__(
        self,
        settings: Settings,
        jobs: JobStore,
        roots: StorageRoots,
        executor: Executor,
        worker: Worker | None,
        jobs_queued: Hook[int],
        releaser: Releaser,
        notices: NoticeStore,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.executor = executor
        self.methods: MethodRegistry = executor.methods
        self.sources: Sources = executor.sources
        self.roots = roots
        self.worker = worker
        self.jobs_queued = jobs_queued
        self.releaser = releaser
        self.notices = notices
        self._emails: dict[str, str] = {}  # the address last recorded of each user, to write only changes

    def ping_database(self) -> None:
        """Raise when the job database does not answer."""
        self.jobs.db.ping()

    # -- accepting ----------------------------------------------------------------------------

    def _validate(self, item: StageItem, groups: frozenset[str] | None, owner: Owner | None) -> tuple[str, SourcePlan]:
        """Check one item as a worker would run it: the destination as the job shows it, and the plan.

        ``owner``: the (uid, gid) the result will belong to, as a job records it.
        """
        staging_method = self.methods.get(item.method)
        if not staging_method.runs_in_worker:
            raise StagingError("invalid_request", f"{staging_method.name} is answered directly, not queued")
        label = self._destination_label(item)
        plan = self._plan(item, groups)
        staging_method.check_source(plan, self.settings, owner)
        return label, plan

    def _destination_label(self, item: StageItem) -> str:
        username = validate_username(item.username)
        destination = resolve_destination(self.settings.user_areas, username, item.relative_path)
        return self.methods.get(item.method).destination_label(username, destination, self.settings)

    def _plan(self, item: StageItem, groups: frozenset[str] | None) -> SourcePlan:
        source, raw = self.sources.of(item)
        return source.plan(raw, groups)

    def _size(self, plan: SourcePlan) -> int | None:
        """A file's size; a folder's only when a byte quota needs it (walking a dataset costs)."""
        if plan.is_dir and not (self.settings.quota_bytes_per_day or self.settings.quota_held_bytes_per_user):
            return None
        return plan.bytes_total

    def _owner(self, caller: Identity) -> Owner | None:
        fields = self._owner_fields(caller)
        return owner_tuple(fields["owner_uid"], fields["owner_gid"])

    def _owner_fields(self, caller: Identity) -> dict[str, int | None]:
        """The uid/gid staged data gets: the caller's (from token claims), else the configured ones."""
        return {
            "owner_uid": caller.uid if caller.uid is not None else self.settings.owner_uid,
            "owner_gid": caller.gid if caller.gid is not None else self.settings.owner_gid,
        }

    def _check_quotas(self, username: str | None, rows: list[dict[str, Any]]) -> None:
        """The per-user limits, for the jobs about to be recorded (as their columns)."""
        size = sum(row["bytes_total"] or 0 for row in rows)
        self._check_active_and_daily(username, len(rows), size)
        quota = self.settings.quota_held_bytes_per_user
        if quota:
            holds = sum(row["bytes_total"] or 0 for row in rows if row["method"] != "symlink_copy")
            held = self.jobs.held_bytes(username)
            if held + holds > quota:
                raise StagingError(
                    "quota_exceeded",
                    f"this would hold {held + holds} bytes of staged data, over the quota of {quota} bytes "
                    f"(held now: {held}); release data or wait for it to expire",
                )

    def _check_active_and_daily(self, username: str | None, jobs: int, size: int) -> None:
        limit = self.settings.max_active_jobs_per_user
        if limit and self.jobs.active_count(username) + jobs > limit:
            raise StagingError(
                "too_many_jobs", f"at most {limit} jobs of one user may be queued or running", retry_after=30
            )
        quota = self.settings.quota_bytes_per_day
        if quota and self.jobs.bytes_since(username, utcnow() - timedelta(days=1)) + size > quota:
            raise StagingError("quota_exceeded", f"this would exceed the quota of {quota} bytes in 24 hours")

    def _remember_email(self, caller: Identity) -> None:
        """Keep the address the caller's sign-in carries, where their notices go."""
        if caller.username and caller.email and self._emails.get(caller.username) != caller.email:
            self.notices.remember_email(caller.username, caller.email)
            self._emails[caller.username] = caller.email

    def submit(self, item: StageItem, caller: Identity) -> StagingJob:
        """Validate a staging request and queue it; a refusal is recorded, then raised."""
        self._remember_email(caller)
        try:
            accepted = self._accept(item, caller, {})
            self._check_quotas(item.username, [{**accepted, "method": item.method}])
        except StagingError as error:
            self.record_refusal(item, error)
            raise
        fields = {**self._owner_fields(caller), **item.record(), "request_id": str(uuid.uuid4()), "item_index": 0}
        job = self.jobs.create(**accepted, **fields)
        log.info(
            "job %s %s method=%s user=%s source=%s destination=%s",
            job.id,
            job.status,
            job.method,
            item.username,
            item.local_path_on_storage or item.did,
            job.destination,
        )
        return job

    def names_collection(self, item: StageItem, caller: Identity) -> bool:
        """Whether the item names a dataset or container DID (its refusals are left to staging it)."""
        if item.did is None:
            return False
        try:
            source, raw = self.sources.of(item)
            return source.expand(raw, caller.read_groups) is not None
        except StagingError:
            return False

    def _accept(self, item: StageItem, caller: Identity, rules: dict[str, str]) -> dict[str, Any]:
        """The columns of an accepted item's job: queued, or waiting for its replica when it is not at
        this site and the caller asked for replication (``rules``: the rules made for this request, by DID)."""
        lifetime = {"lifetime_seconds": lifetime_seconds(item.lifetime, self.settings, caller)}
        try:
            label, plan = self._validate(item, caller.read_groups, self._owner(caller))
            return {
                "status": JobStatus.QUEUED,
                "destination": label,
                "bytes_total": self._size(plan),
                "source_pin": plan.pin,
                **lifetime,
            }
        except StagingError as error:
            if error.code != "not_at_site" or item.replicate is None:
                raise
        if item.replicate not in rules:
            rules[item.replicate] = self.sources.dids().catalogue.request_replication(Did.parse(item.replicate))
        timeout = timedelta(seconds=self.settings.rucio_replication_timeout_seconds)
        return {
            "status": JobStatus.WAITING,
            "destination": self._destination_label(item),
            "bytes_total": None,
            "replication_rule": rules[item.replicate],
            "wait_until": utcnow() + timeout,
            **lifetime,
        }

    def stage_now(self, item: StageItem, caller: Identity) -> StagingJob:
        """Queue one job and run it in the calling thread when this process has a free worker slot.

        A synchronous request then skips the hand-off to a worker thread and back; otherwise the
        job is left to the workers. Returns the job as it is now (finished, or still queued).
        """
        job = self.submit(item, caller)
        finished = self.worker.run_now(job.id) if self.worker is not None else None
        if finished is None:
            self.jobs_queued(1)
        return finished or job

    def submit_many(
        self, username: str | None, items: list[StageItem], caller: Identity, idempotency_key: str | None = None
    ) -> tuple[str, list[tuple[StagingJob, StagingError | None]]]:
        """Queue one job per item in one transaction; refused items become failed jobs beside them.

        A repeated ``idempotency_key`` of the same user returns the jobs of the first submission.
        """
        self._remember_email(caller)
        try:
            if username is not None:  # every item would be refused for it: the request is
                validate_username(username)
            checked = self._expand(items, caller.read_groups)
            limit = self.settings.max_items_per_request
            if len(checked) > limit:
                raise StagingError("too_many_items", f"a request may hold at most {limit} items, not {len(checked)}")
        except StagingError as error:
            self.record_refusal(StageItem(None, username, None, None), error)
            raise
        request_id = str(uuid.uuid4())
        dids = [storable(item.did) for item in items if item.did is not None]
        earlier = self.jobs.open_request(request_id, username, idempotency_key, dids)
        if earlier is not None:
            return earlier, [(job, _refusal_of(job)) for job in self.jobs.jobs_of_request(earlier)]
        rows: list[dict[str, Any]] = []
        errors: list[StagingError | None] = []
        rules: dict[str, str] = {}
        for index, (item, refused) in enumerate(checked):
            fields = {**self._owner_fields(caller), **item.record(), "request_id": request_id, "item_index": index}
            try:
                if refused is not None:
                    raise refused
                accepted = self._accept(item, caller, rules)
            except StagingError as error:
                status = {"status": JobStatus.FAILED, "error_code": error.code, "error_reason": error.detail}
                rows.append({**fields, **status, "finished_at": utcnow()})
                errors.append(error)
                continue
            rows.append({**fields, **accepted})
            errors.append(None)
        valid = [row for row in rows if row["status"] != JobStatus.FAILED]
        try:
            self._check_quotas(username, valid)
        except StagingError as error:
            self.record_refusal(StageItem(None, username, None, None), error, request_id=request_id)
            raise
        jobs = self.jobs.create_many(rows)
        for job, refusal in zip(jobs, errors, strict=True):
            if refusal is not None:
                refusal.extra["job_id"] = job.id
                log.warning("job %s refused user=%s code=%s reason=%s", job.id, username, refusal.code, refusal.detail)
        queued = sum(1 for row in rows if row["status"] == JobStatus.QUEUED)
        log.info(
            "request %s: %d job(s) queued, %d waiting for replication, %d refused, user=%s",
            request_id,
            queued,
            len(valid) - queued,
            len(checked) - len(valid),
            username,
        )
        if queued:
            self.jobs_queued(queued)
        return request_id, list(zip(jobs, errors, strict=True))

    def _expand(
        self, items: list[StageItem], groups: frozenset[str] | None
    ) -> list[tuple[StageItem, StagingError | None]]:
        """Collections (a dataset or container DID) become one item per member, at its own destination.

        An item whose collection cannot be read is kept, refused with its reason; two members that
        would land on one name refuse the whole request (``did_collision``) before anything is staged.
        """
        expanded: list[tuple[StageItem, StagingError | None]] = []
        for item in items:
            try:
                source, raw = self.sources.of(item)
                members = source.expand(raw, groups)
            except StagingError as error:
                expanded.append((item, error))
                continue
            if members is None:
                expanded.append((item, None))
                continue
            if not members:
                expanded.append((item, StagingError("source_not_found", f"{raw} holds no files")))
                continue
            landed: dict[str, str] = {}
            base = tuple(part for part in (item.relative_path or "").split("/") if part)
            for member, parts in members:
                relative = "/".join((*base, *parts))
                if relative in landed:
                    raise StagingError(
                        "did_collision", f"{landed[relative]} and {member} of {raw} would both land at '{relative}'"
                    )
                landed[relative] = member
                expanded.append((replace(item, did=member, relative_path=relative), None))
        return expanded

    def record_refusal(self, item: StageItem, error: StagingError, request_id: str | None = None) -> StagingJob:
        """Record a refused request as a failed job; the error then carries the job's id."""
        fields = {**item.record(), "request_id": request_id or str(uuid.uuid4())}
        job = self.jobs.create(status=JobStatus.FAILED, error_code=error.code, error_reason=error.detail, **fields)
        error.extra["job_id"] = job.id
        log.warning(
            "job %s refused method=%s user=%s source=%s relative_path=%s code=%s reason=%s",
            job.id,
            fields["method"],
            fields["username"],
            fields["local_path_on_storage"] or fields["did"],
            fields["relative_path"],
            error.code,
            error.detail,
        )
        return job

    # -- direct downloads, served by the API process ------------------------------------------

    def start_download(self, item: StageItem, caller: Identity) -> tuple[StagingJob, SourcePlan]:
        """Check a direct download and record it as running in this API process.

        A folder's plan lists its files; a dataset or container DID's plan lists its members' replicas.
        """
        try:
            if item.username is not None:
                validate_username(item.username)
            plan = self._download_plan(item, caller.read_groups)
        except StagingError as error:
            self.record_refusal(item, error)
            raise
        now, size = utcnow(), plan.bytes_total
        job = self.jobs.create(
            request_id=str(uuid.uuid4()),
            status=JobStatus.RUNNING,
            worker_id=self.executor.process_id,
            attempts=1,
            started_at=now,
            heartbeat_at=now,
            bytes_total=size,
            files_total=len(plan.files),
            **item.record(),
        )
        self.executor.active.add(job.id)
        log.info("job %s download started user=%s source=%s bytes=%s", job.id, item.username, plan.top, size)
        return job, plan

    def _download_plan(self, item: StageItem, groups: frozenset[str] | None) -> SourcePlan:
        source, raw = self.sources.of(item)
        members = source.expand(raw, groups)
        if members is None:
            return source.plan(raw, groups)
        entries: list[PlannedFile] = []
        for member, parts in members:  # each member checked as its own source
            member_plan = source.plan(member, groups)
            (entry,) = member_plan.entries
            entries.append(replace(entry, parts=parts))
        name = (raw or "").split(":", 1)[-1]
        return SourcePlan(Path(name), True, lambda: entries)

    def finish_download(self, job: StagingJob, bytes_sent: int, error: BaseException | None) -> None:
        self.executor.active.discard(job.id)
        process = self.executor.process_id
        if error is None:
            self.jobs.finish(job.id, process, JobStatus.SUCCEEDED, attempt=job.attempts, bytes_done=bytes_sent)
            log.info("job %s download succeeded bytes=%s", job.id, bytes_sent)
            return
        self.jobs.finish(
            job.id,
            process,
            JobStatus.FAILED,
            attempt=job.attempts,
            bytes_done=bytes_sent,
            error_code="download_interrupted",
            error_reason="the client went away before the download finished",
        )
        log.warning("job %s download interrupted after %s bytes: %r", job.id, bytes_sent, error)

    # -- jobs and requests --------------------------------------------------------------------

    def job(self, job_id: int, caller: Identity) -> StagingJob:
        """A job the caller may see; another user's job is not even confirmed."""
        job = self.jobs.get(job_id)
        if job is None or not caller.may_see(job.username):
            raise StagingError("job_not_found", f"there is no job {job_id}")
        return job

    def find(self, caller: Identity, username: str | None, **filters: Any) -> tuple[list[StagingJob], int]:
        """Jobs, newest first (an authenticated user who is not an admin sees only their own)."""
        if caller.authenticated and not caller.is_admin:
            username = caller.acting_for(username)
        return self.jobs.find(username=username, **filters)

    def attempts(self, job_id: int, caller: Identity) -> list[dict[str, Any]]:
        self.job(job_id, caller)
        return self.jobs.attempts_of(job_id)

    def cancel(self, job_id: int, caller: Identity) -> StagingJob:
        """Cancel a job: a queued one never starts; a running one stops within a second."""
        job = self.job(job_id, caller)
        if JobStatus(job.status).is_final:
            raise StagingError("job_finished", f"job {job_id} already ended ({job.status})")
        self.executor.cancel([job_id])
        return self.job(job_id, caller)

    def retry(self, job_id: int, caller: Identity) -> StagingJob:
        """Queue a failed or cancelled job again, checked again first as a new request would be.

        A refusal whose cause remains (a ``..`` destination) is answered again and nothing is
        queued; one whose cause can change (a source that now exists) is queued.
        """
        job = self.job(job_id, caller)
        if JobStatus(job.status) in (JobStatus.FAILED, JobStatus.CANCELLED):
            item = StageItem(job.method, job.username, job.local_path_on_storage, job.relative_path, job.did)
            self._validate(item, caller.read_groups, owner_tuple(job.owner_uid, job.owner_gid))
        if not self.jobs.retry(job_id):
            raise StagingError(
                "job_finished", f"job {job_id} is {job.status}; only failed or cancelled jobs are retried"
            )
        self.jobs_queued(1)
        return self.job(job_id, caller)

    # -- lifetimes ----------------------------------------------------------------------------

    def release(self, job_id: int, caller: Identity) -> StagingJob:
        """Remove a job's staged data now (what is still as it was staged)."""
        job = self.job(job_id, caller)
        if not self.releaser.holds_data(job):
            raise StagingError("no_data_held", f"job {job_id} holds no staged data ({self._why_nothing_held(job)})")
        self._release(job, caller)
        return self.job(job_id, caller)

    def _release(self, job: StagingJob, caller: Identity) -> None:
        try:
            self.releaser.release(job, self._release_reason(job, caller))
        except OSError as exc:
            log.error("job %s: releasing its data failed", job.id, exc_info=True)
            raise from_os_error(exc) from None

    def set_lifetime(self, job_id: int, lifetime: str | None, caller: Identity) -> StagingJob:
        """Keep a job's data for ``lifetime`` from now (None: the site's default); before it ends, from its end."""
        job = self.job(job_id, caller)
        seconds = lifetime_seconds(lifetime, self.settings, caller)
        if JobStatus(job.status).is_final and not self.releaser.holds_data(job):
            raise StagingError("no_data_held", f"job {job_id} holds no staged data ({self._why_nothing_held(job)})")
        if not self.jobs.set_lifetime(job.id, seconds, expiry(utcnow(), seconds)):
            raise StagingError("no_data_held", f"job {job_id} holds no staged data (it was released)")
        shown = f"{seconds}s" if seconds else "until released"
        log.info("job %s: lifetime set to %s by %s", job_id, shown, caller.username)
        return self.job(job_id, caller)

    def release_request(self, request_id: str, caller: Identity) -> RequestSummary:
        """Release the data of every job of a request that holds some."""
        for job in self._request_jobs(request_id, caller):
            if self.releaser.holds_data(job):
                self._release(job, caller)
        return self.request_state(request_id, caller)

    def set_request_lifetime(self, request_id: str, lifetime: str | None, caller: Identity) -> RequestSummary:
        """A new lifetime for every job of a request that is active or holds data."""
        seconds = lifetime_seconds(lifetime, self.settings, caller)
        expires_at = expiry(utcnow(), seconds)
        for job in self._request_jobs(request_id, caller):
            if not JobStatus(job.status).is_final or self.releaser.holds_data(job):
                self.jobs.set_lifetime(job.id, seconds, expires_at)
        return self.request_state(request_id, caller)

    def usage(self, username: str | None, caller: Identity) -> UserUsage:
        """What a user holds now, by method, and what of it expires within a day (admins: any user)."""
        if caller.authenticated:
            username = caller.acting_for(username)
        now = utcnow()
        quota = self.settings.quota_held_bytes_per_user or None
        held = self.jobs.holdings(username)
        expiring = self.jobs.holdings(username, expiring_by=now + timedelta(days=1))
        return UserUsage(username, held, expiring, quota)

    def usage_by_user(self, caller: Identity) -> list[UserUsage]:
        """Every user's holdings (admins)."""
        caller.require_admin()
        expiring_by = utcnow() + timedelta(days=1)
        held, expiring = (
            self.jobs.holdings(None, all_users=True),
            self.jobs.holdings(None, all_users=True, expiring_by=expiring_by),
        )
        users = sorted({row.username or "" for row in held})
        quota = self.settings.quota_held_bytes_per_user or None
        return [
            UserUsage(
                name,
                [row for row in held if (row.username or "") == name],
                [row for row in expiring if (row.username or "") == name],
                quota,
            )
            for name in users
        ]

    @staticmethod
    def _release_reason(job: StagingJob, caller: Identity) -> ReleaseReason:
        by_admin = caller.authenticated and caller.is_admin and caller.username != job.username
        return ReleaseReason.ADMIN if by_admin else ReleaseReason.USER

    def _why_nothing_held(self, job: StagingJob) -> str:
        if job.released_at is not None:
            return f"{job.release_reason} already"
        if job.status != JobStatus.SUCCEEDED:
            return f"it is {job.status}"
        return f"{job.method} leaves nothing at this site to release"

    def _request_jobs(self, request_id: str, caller: Identity) -> list[StagingJob]:
        jobs = self.jobs.jobs_of_request(request_id)
        if not jobs or not all(caller.may_see(job.username) for job in jobs):
            raise StagingError("request_not_found", f"there is no request {request_id}")
        return jobs

    def _check_request(self, request_id: str, caller: Identity) -> None:
        """``request_not_found`` unless the caller may see every job of the request (its users only
        are read: a request of 10,000 jobs is summarised often)."""
        users = self.jobs.users_of_request(request_id)
        if not users or not all(caller.may_see(username) for username in users):
            raise StagingError("request_not_found", f"there is no request {request_id}")

    def request_state(self, request_id: str, caller: Identity) -> RequestSummary:
        self._check_request(request_id, caller)
        summary = self.jobs.summarize_request(request_id)
        if summary is None:
            raise StagingError("request_not_found", f"there is no request {request_id}")
        return summary

    def cancel_request(self, request_id: str, caller: Identity) -> RequestSummary:
        """Cancel every job of a request that has not ended."""
        jobs = self._request_jobs(request_id, caller)
        self.executor.cancel([job.id for job in jobs if not JobStatus(job.status).is_final])
        return self.request_state(request_id, caller)

    # -- the catalogue ----------------------------------------------------------------------------

    def search_dids(self, scope: str, pattern: str, limit: int, offset: int, caller: Identity) -> list[tuple[Did, str]]:
        """DIDs of a scope the caller may stage whose name matches ``pattern`` (``*`` a wildcard)."""
        dids = self.sources.dids()
        dids.check_scope(scope, caller.read_groups)
        return dids.catalogue.search(scope, pattern, limit, offset)

    def describe_did(self, raw: str, caller: Identity) -> DidSummary:
        """A DID's type, files, bytes and files at this site, before anything is staged."""
        dids = self.sources.dids()
        did = Did.parse(raw)
        dids.check_scope(did.scope, caller.read_groups)
        return dids.catalogue.describe(did)

    # -- admin tools ----------------------------------------------------------------------------

    def create_test_file(self, path: str, size: int | None, text: str | None, caller: Identity) -> tuple[str, int]:
        """Write a new file in the first storage root (never overwriting); its path there and size."""
        settings = self.settings
        if not settings.enable_file_tool:
            raise StagingError("file_tool_disabled", "the file tool is not enabled (STAGING_ENABLE_FILE_TOOL)")
        caller.require_admin()
        data = text.encode() if text is not None else None
        total = len(data) if data is not None else (size or 0)
        if total > settings.file_tool_max_bytes:
            raise StagingError("file_too_large", f"the file tool creates at most {settings.file_tool_max_bytes} bytes")
        target = Destination(self.roots.configured[0], validate_relative_path(path))
        chunks = iter([data]) if data is not None else _random_chunks(total)
        try:
            write_new_file(target, chunks)
        except FileExistsError:
            raise StagingError("file_exists", f"'{path}' exists already") from None
        return "/".join(target.parts), total


def _random_chunks(size: int) -> Iterator[bytes]:
    for offset in range(0, size, FILE_TOOL_CHUNK):
        yield os.urandom(min(FILE_TOOL_CHUNK, size - offset))
