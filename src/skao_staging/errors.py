"""The errors the service answers with: a machine-readable code, an HTTP status and a sentence.

Every message is written for the user: it may repeat what the user sent, never a server-side path
or a stack trace. ``CODES`` is the catalogue (the docs list it); a job that failed in a worker keeps
its code, so whoever reports it later answers with the same status.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    status: int
    meaning: str
    retryable: bool = False


CODES: dict[str, ErrorCode] = {
    "invalid_request": ErrorCode(422, "The request is malformed (missing or mistyped fields)."),
    "invalid_username": ErrorCode(400, "The username has characters or a length that is not allowed."),
    "invalid_path": ErrorCode(
        400, "A path is empty, absolute where it must be relative, or holds '..', NUL or control characters."
    ),
    "unknown_method": ErrorCode(400, "No staging method has that name."),
    "method_not_enabled": ErrorCode(400, "The method exists but this site does not offer it."),
    "unsupported_source": ErrorCode(400, "The source is neither a regular file nor a folder, or holds a symlink loop."),
    "link_not_possible": ErrorCode(400, "A hard link cannot cross filesystems; use local_copy."),
    "unauthenticated": ErrorCode(401, "The request carries no accepted identity."),
    "invalid_token": ErrorCode(401, "The bearer token is expired, for another audience or issuer, or forged."),
    "forbidden": ErrorCode(403, "The caller may not act for that user or see that job."),
    "admin_only": ErrorCode(403, "Only members of the admin group may use this."),
    "file_tool_disabled": ErrorCode(404, "The file-creation tool is not enabled at this site."),
    "file_exists": ErrorCode(409, "The file tool never overwrites an existing file."),
    "file_too_large": ErrorCode(413, "The file tool's size limit was exceeded."),
    "oidc_unavailable": ErrorCode(503, "The identity provider or its keys cannot be reached.", retryable=True),
    "source_forbidden": ErrorCode(403, "The caller's groups may not read that part of the storage."),
    "scope_forbidden": ErrorCode(403, "The caller's groups may not stage DIDs of that Rucio scope."),
    "source_outside_storage": ErrorCode(403, "The source lies, or a symlink leads, outside the storage roots."),
    "unsafe_destination": ErrorCode(403, "A folder on the destination path is a symbolic link."),
    "link_not_permitted": ErrorCode(403, "The operating system refused the hard link."),
    "permission_denied": ErrorCode(403, "The operating system refused access to a file."),
    "source_not_found": ErrorCode(404, "The source does not exist."),
    "job_not_found": ErrorCode(404, "No job has that id."),
    "not_found": ErrorCode(404, "No such path in this service's API."),
    "method_not_allowed": ErrorCode(405, "That path does not take this HTTP method."),
    "request_not_found": ErrorCode(404, "No request has that id."),
    "job_finished": ErrorCode(409, "The job already ended (cancel), or has not failed (retry)."),
    "job_cancelled": ErrorCode(409, "The job was cancelled before it finished."),
    "body_too_large": ErrorCode(413, "The request body is larger than this site accepts."),
    "quota_exceeded": ErrorCode(
        413, "The user's quota of bytes staged in 24 hours, or of staged data held at once, would be exceeded."
    ),
    "invalid_lifetime": ErrorCode(
        400, "The lifetime is not an ISO 8601 duration or seconds, is negative, or exceeds the site's maximum."
    ),
    "lifetime_not_allowed": ErrorCode(403, "Only admins may keep data until it is released (lifetime 0)."),
    "no_data_held": ErrorCode(409, "The job holds no staged data: it published none, or it was released."),
    "too_many_jobs": ErrorCode(429, "The user has as many active jobs as allowed; retry later.", retryable=True),
    "too_many_items": ErrorCode(413, "The request has more items than this site accepts at once."),
    "destination_not_found": ErrorCode(404, "A folder of the destination disappeared during staging."),
    "destination_exists": ErrorCode(409, "The destination already holds different content."),
    "destination_blocked": ErrorCode(409, "A file stands where the destination needs a folder."),
    "source_writable": ErrorCode(409, "A hard link to a writable source would not be read-only."),
    "no_space": ErrorCode(507, "The destination filesystem is full or over quota."),
    "source_changed": ErrorCode(500, "The source changed while it was copied.", retryable=True),
    "verification_failed": ErrorCode(500, "The copy does not match the source checksum.", retryable=True),
    "io_error": ErrorCode(500, "An input/output error interrupted the staging.", retryable=True),
    "internal_error": ErrorCode(500, "An unexpected error; the service log has the details.", retryable=True),
    "interrupted": ErrorCode(500, "The process running the job stopped too many times.", retryable=True),
    "download_interrupted": ErrorCode(499, "The client went away before the download finished."),
    "database_unavailable": ErrorCode(503, "The job database cannot be reached.", retryable=True),
    "schema_not_current": ErrorCode(503, "The job database's schema is not current: run skao-staging migrate."),
    "jupyter_user_unknown": ErrorCode(404, "JupyterHub has no such user."),
    "invalid_did": ErrorCode(400, "The DID is not 'scope:name' with a valid scope and name."),
    "did_not_found": ErrorCode(404, "The Rucio catalogue has no such DID."),
    "not_at_site": ErrorCode(404, "The DID has no replica at this site's RSE (the answer lists where it is)."),
    "did_collision": ErrorCode(409, "Two files of the DID would land on one name."),
    "replication_stuck": ErrorCode(502, "Rucio's rule to bring the data to this site is STUCK."),
    "replication_timeout": ErrorCode(
        504, "The data did not reach this site in time (STAGING_RUCIO_REPLICATION_TIMEOUT_SECONDS)."
    ),
    "checksum_mismatch": ErrorCode(500, "The replica's bytes do not match the catalogue's checksum or size."),
    "rucio_forbidden": ErrorCode(502, "Rucio refused the service's account."),
    "rucio_unavailable": ErrorCode(503, "Rucio cannot be reached.", retryable=True),
    "jupyter_unavailable": ErrorCode(503, "JupyterHub or the user's Jupyter server cannot be reached.", retryable=True),
    "jupyter_forbidden": ErrorCode(502, "JupyterHub refused the service token, or it lacks a scope."),
    "jupyter_spawn_failed": ErrorCode(502, "The user's Jupyter server failed to start in time.", retryable=True),
    "jupyter_upload_failed": ErrorCode(502, "The Jupyter server refused or broke off the upload.", retryable=True),
    "jupyter_error": ErrorCode(502, "JupyterHub answered unexpectedly.", retryable=True),
}


def status_for(code: str | None) -> int:
    entry = CODES.get(code or "")
    return entry.status if entry else 500


class StagingError(Exception):
    """An error that reaches a client as ``{"detail": ..., "code": ...}`` with the code's status."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        if code not in CODES:
            raise ValueError(f"undeclared error code {code!r}")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra

    @property
    def status_code(self) -> int:
        return CODES[self.code].status

    @property
    def retryable(self) -> bool:
        return CODES[self.code].retryable

    def to_dict(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


class DestinationAppeared(Exception):
    """Raised by a method when its destination was created by someone else while it worked."""


def from_os_error(exc: OSError) -> StagingError:
    """Describe an operating-system error without the paths it carries."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StagingError("no_space", f"no space left at the destination ({reason})")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StagingError("permission_denied", f"the system refused access ({reason})")
    return StagingError("io_error", f"input/output error ({reason})")
