"""Shapes of request and answer bodies (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_serializer, model_validator

from ..db import Holding, JobStatus, RequestSummary, StagingJob, iso_utc
from ..errors import CODES, StagingError
from ..listing import Listing
from ..service import UserUsage


class OneSource(BaseModel):
    """Exactly one of ``local_path_on_storage`` and ``did`` names the source."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        named = [name for name in ("local_path_on_storage", "did") if getattr(self, name) is not None]
        if len(named) != 1:
            raise ValueError("give exactly one source: local_path_on_storage or did")
        return self


class StageBody(OneSource):
    """The seed's request body (``did`` is this service's addition; the seed's fields are unchanged)."""

    local_path_on_storage: str | None = Field(
        None, description="Source: absolute inside a storage root, or relative to the first."
    )
    did: str | None = Field(None, description="Source: a Rucio file DID, scope:name (instead of a path).")
    request_replication: bool = Field(
        False,
        description="With did: when the DID has no replica at this site, ask Rucio to replicate it here; "
        "the job waits (status waiting) until the replica is available, then stages.",
    )
    relative_path: str | None = Field(
        None, description="Destination below the user's area; required except by direct_download, which ignores it."
    )


LIFETIME_DESCRIPTION = (
    "How long the staged data is kept: an ISO 8601 duration (P14D, PT12H) or seconds, up to the site's "
    "maximum; 0 keeps it until released (admins, or where the site allows it); default: the site's default"
)
Lifetime = str | int | None


def lifetime_text(lifetime: Lifetime) -> str | None:
    """A lifetime as the service parses it (seconds given as a JSON number become text)."""
    return None if lifetime is None else str(lifetime)


class ErrorBody(BaseModel):
    """Every error answer: a sentence for people and a code from the catalogue (``errors.CODES``)."""

    detail: str
    code: str = Field(json_schema_extra={"enum": list[JsonValue](sorted(CODES))})


class ItemError(ErrorBody):
    """Why one item of a bulk request was refused; ``job_id`` is its recorded (failed) job."""

    model_config = ConfigDict(extra="allow")  # e.g. enabled_methods for an unknown method

    job_id: int | None = None


class MethodInfo(BaseModel):
    name: str
    aliases: list[str]
    description: str
    accepts_directories: bool


class Job(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_id: int = Field(validation_alias="id")
    request_id: str
    status: JobStatus
    method: str | None
    username: str | None
    local_path_on_storage: str | None
    did: str | None
    relative_path: str | None
    destination: str | None
    bytes: int | None = Field(validation_alias="bytes_total")
    bytes_done: int
    files: int | None = Field(validation_alias="files_total")
    checksum: str | None
    read_only: bool | None
    note: str | None
    attempts: int
    lifetime: int | None = Field(
        validation_alias="lifetime_seconds", description="Seconds its data is kept once staged; 0: until released"
    )
    expires_at: datetime | None = Field(description="When the staged data is removed; null: never, or nothing held")
    released_at: datetime | None = Field(description="When the staged data was removed")
    release_reason: str | None = Field(description="expired, released by user, or released by admin")
    release_note: str | None = Field(description="What the release left in place, and why")
    worker_id: str | None = Field(description="The process running (or that ran) the job")
    error_code: str | None
    error_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @field_serializer("created_at", "started_at", "finished_at", "expires_at", "released_at")
    def _utc(self, value: datetime | None) -> str | None:
        return iso_utc(value)

    @classmethod
    def of(cls, job: StagingJob) -> Job:
        return cls.model_validate(job)


class JobPage(BaseModel):
    jobs: list[Job]
    total: int
    limit: int
    offset: int


class JobItem(OneSource):
    method: str
    local_path_on_storage: str | None = Field(None, description="An archive path (or give did)")
    did: str | None = Field(
        None, description="A Rucio DID, scope:name; a dataset or container becomes one job per file"
    )
    request_replication: bool = Field(
        False,
        description="With did: files not at this site are replicated here by a Rucio rule on this DID; "
        "their jobs wait (status waiting) until their replicas are available, then stage.",
    )
    relative_path: str
    lifetime: Lifetime = Field(None, description=LIFETIME_DESCRIPTION + " (default here: the request's lifetime)")


class JobsRequest(BaseModel):
    username: str | None = Field(None, description="Whose area receives the data (default: the caller)")
    lifetime: Lifetime = Field(None, description=LIFETIME_DESCRIPTION)
    items: list[JobItem] = Field(min_length=1)


class LifetimeChange(BaseModel):
    """A new lifetime, counted from now (from the end of a job that has not ended yet)."""

    lifetime: Lifetime = Field(description=LIFETIME_DESCRIPTION)


class ItemOutcome(BaseModel):
    """One submitted item: its job, and the error if it was refused."""

    index: int
    job: Job
    error: ItemError | None = None


class JobsAccepted(BaseModel):
    request_id: str
    items: list[ItemOutcome]

    @classmethod
    def of(cls, request_id: str, outcomes: list[tuple[StagingJob, StagingError | None]]) -> JobsAccepted:
        return cls(
            request_id=request_id,
            items=[
                ItemOutcome(index=index, job=Job.of(job), error=None if error is None else error.to_dict())
                for index, (job, error) in enumerate(outcomes)
            ],
        )


class LifetimeRules(BaseModel):
    """How long staged data may be kept at this site."""

    default_seconds: int = Field(description="The lifetime of a request that names none; 0: until released")
    max_seconds: int = Field(description="The longest lifetime a request may ask for")
    unlimited_for_everyone: bool = Field(description="Whether every user (not only admins) may ask for 0")


class SiteConfig(BaseModel):
    version: str
    methods: list[MethodInfo]
    storage_roots: list[str]
    unavailable_methods: dict[str, str]
    auth_mode: Literal["none", "header", "oidc"]
    file_tool_enabled: bool
    file_tool_max_bytes: int
    error_codes: dict[str, str] = Field(description="What each error code means, in plain words")
    dids: bool = Field(False, description="Whether sources may be Rucio DIDs (a Rucio is configured)")
    rucio_rse: str | None = Field(None, description="The RSE (or expression) whose replicas are staged")
    lifetimes: LifetimeRules
    quota_held_bytes: int | None = Field(description="Bytes of staged data one user may hold; null: no quota")
    jupyter_workdir: str | None = Field(
        None, description="The folder of each user's Jupyter server that jupyter_copy writes below ('': its root)"
    )


class Me(BaseModel):
    """The caller, as the service sees them."""

    username: str | None = Field(description="None when nobody is authenticated (STAGING_AUTH_MODE=none)")
    authenticated: bool
    is_admin: bool
    admin_tools: bool = Field(description="Whether the log and file tools answer this caller (everyone in mode none)")
    groups: list[str]


class StorageEntry(BaseModel):
    name: str
    path: str = Field(description="Usable as local_path_on_storage")
    type: Literal["file", "folder"]
    size: int | None
    modified: datetime | None

    @field_serializer("modified")
    def _utc(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


class StorageListing(BaseModel):
    path: str = Field(description="The folder listed; empty for the list of storage roots")
    parent: str | None = Field(description="The folder above; empty string: the roots; null at the top")
    entries: list[StorageEntry]
    truncated: bool = Field(description="More entries exist than the limit allowed")

    @classmethod
    def of(cls, listing: Listing) -> StorageListing:
        entries = [StorageEntry(**vars(entry)) for entry in listing.entries]
        return cls(path=listing.path, parent=listing.parent, entries=entries, truncated=listing.truncated)


class RequestState(BaseModel):
    """A request's jobs rolled up as FTS3 does."""

    request_id: str
    state: str = Field(description="active, succeeded, failed, partially_failed or cancelled")
    jobs: int
    counts: dict[str, int]
    bytes_done: int
    bytes_total: int
    dids: list[str] = Field(description="The Rucio DIDs the request asked for (a dataset as named, before expansion)")

    @classmethod
    def of(cls, summary: RequestSummary) -> RequestState:
        return cls(
            request_id=summary.request_id,
            state=summary.state,
            jobs=sum(summary.counts.values()),
            counts=summary.counts,
            bytes_done=summary.bytes_done,
            bytes_total=summary.bytes_total,
            dids=summary.dids,
        )


class Attempt(BaseModel):
    attempt: int
    worker_id: str | None
    outcome: str
    error_code: str | None
    error_reason: str | None
    started_at: datetime | None
    finished_at: datetime

    @field_serializer("started_at", "finished_at")
    def _utc(self, value: datetime | None) -> str | None:
        return iso_utc(value)


class DidFound(BaseModel):
    did: str = Field(description="scope:name")
    type: str = Field(description="FILE, DATASET or CONTAINER")


class DidPage(BaseModel):
    dids: list[DidFound]
    limit: int
    offset: int


class DidInfo(BaseModel):
    did: str
    type: str = Field(description="FILE, DATASET or CONTAINER")
    files: int
    bytes: int
    files_at_site: int = Field(description="Files with an available replica at this site's RSE")
    at_site: bool = Field(description="Every file is at this site: staging needs no transfer")


class Held(BaseModel):
    bytes: int = Field(description="Bytes held (hard links count zero: they are the archive's own file)")
    files: int
    jobs: int


class Usage(BaseModel):
    """Staged data a user holds now (not released), by method, and what of it expires within 24 hours."""

    username: str | None
    held: Held
    by_method: dict[str, Held]
    expiring_24h: Held
    quota_bytes: int | None = Field(description="STAGING_QUOTA_HELD_BYTES_PER_USER; null: no quota")

    @classmethod
    def of(cls, usage: UserUsage) -> Usage:
        return cls(
            username=usage.username,
            held=_total(usage.held),
            by_method={row.method: Held(bytes=row.bytes, files=row.files, jobs=row.jobs) for row in usage.held},
            expiring_24h=_total(usage.expiring),
            quota_bytes=usage.quota_bytes,
        )


def _total(rows: list[Holding]) -> Held:
    return Held(
        bytes=sum(row.bytes for row in rows), files=sum(row.files for row in rows), jobs=sum(row.jobs for row in rows)
    )
