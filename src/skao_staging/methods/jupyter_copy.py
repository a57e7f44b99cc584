"""jupyter_copy: stage into the user's Jupyter server through JupyterHub.

Server status -> start and wait when down -> parent folders -> duplicate check (size and the
server's sha256) -> chunked upload to a temporary name -> verify -> rename into place (PATCH, which
refuses to replace) -> read-only where the user's home is mounted into this service.

Where the homes are mounted and ``STAGING_JUPYTER_WRITE_MOUNTED_HOMES`` is on, the hub is asked
about the user (unknown users are refused, or created where the site allows it) and the item is
written into the mounted home by the local copy engine (``LocalCopy``: verified, flushed, published
without replacing, read-only), owned by the home's owner: no server needs to run, and it goes at
disk speed. Its release then goes through the mount too.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from ..checksum import adler32_of_file
from ..config import Settings
from ..copier import check_against_catalogue
from ..errors import DestinationAppeared, StagingError
from ..fsops import READ_FLAGS, READ_ONLY_FILE_MODE, DirCache, chmod_read_only, list_tree, open_parent, temp_name
from ..jupyter import JupyterContents, hub_session
from ..logs import get_logger
from ..paths import Destination, Owner, jupyter_home
from ..sources import PlannedFile, SourcePlan
from .base import (
    EndedJob,
    FileChecksum,
    HeldData,
    Outcome,
    PublishedEntry,
    PublishingMethod,
    Released,
    ReleasePostponed,
    TransferContext,
    TransferResult,
)
from .local_copy import LocalCopy

log = get_logger("jupyter_copy")


@dataclass(frozen=True)
class RemoteTarget:
    """The user's server, the staged item's final and temporary paths there, and the source's digests."""

    contents: JupyterContents
    final: str
    temp: str
    digests: dict[tuple[str, ...], tuple[int, str]]  # parts -> (adler32, sha256)

    def checksums(self, plan: SourcePlan) -> list[FileChecksum]:
        """Each file's adler32, and its sha256 as the identity its release checks through the server."""
        return [
            FileChecksum(entry, adler, f"sha256:{sha}")
            for entry in plan.files
            for adler, sha in (self.digests[entry.parts],)
        ]


def _digests(entry: PlannedFile) -> tuple[int, str]:
    """adler32 (recorded) and sha256 (what Jupyter servers report) of a source file, in one read."""
    sha = hashlib.sha256()
    adler = adler32_of_file(entry.real, sha)
    check_against_catalogue(entry, adler)
    return adler, sha.hexdigest()


def _same_file(model: dict[str, Any], entry: PlannedFile, sha256: str) -> bool:
    if model.get("type") != "file" or model.get("size") != entry.size:
        return False
    remote_hash = model.get("hash")
    if remote_hash and model.get("hash_algorithm", "sha256") == "sha256":
        return bool(remote_hash == sha256)
    return True  # a server that offers no hash: equal sizes are all that can be compared


class JupyterCopy(PublishingMethod[RemoteTarget]):
    name = "jupyter_copy"
    description = "Upload into your Jupyter server (started for you when it is stopped)."
    releasable = True
    _through_mount = LocalCopy()  # the engine where the homes are mounted and written through

    def stage(self, ctx: TransferContext) -> TransferResult:
        if not ctx.settings.jupyter_write_mounted_homes:
            return super().stage(ctx)
        with hub_session(ctx.settings) as hub:
            hub.known_user(ctx.username)
        return self._through_mount.stage(self._mounted_context(ctx))

    def _mounted(self, username: str, destination: Destination, settings: Settings) -> Destination:
        assert settings.jupyter_home_mounts is not None  # availability_problem says so otherwise
        return jupyter_home(settings.jupyter_home_mounts, username, self._remote_parts(destination, settings))

    def _mounted_context(self, ctx: TransferContext) -> TransferContext:
        """The job as a local copy into the user's mounted home, owned by the home's owner."""
        destination = self._mounted(ctx.username, ctx.destination, ctx.settings)
        try:
            home = os.stat(destination.area)
        except FileNotFoundError:
            raise StagingError(
                "destination_not_found", f"the Jupyter home of {ctx.username} is not there (never started?)"
            ) from None
        owner: Owner = ctx.owner or (home.st_uid, home.st_gid)
        return replace(ctx, destination=destination, owner=owner)

    @staticmethod
    def _staged_through_mount(held: HeldData) -> bool:
        """A release follows how the data was staged: the Contents API records sha256 identities."""
        identities = [entry.identity for entry in held.entries if entry.identity is not None]
        if identities:
            return not identities[0].startswith("sha256:")
        return held.settings.jupyter_write_mounted_homes

    def release(self, held: HeldData) -> Released:
        """Delete, through the Contents API, the files whose sha256 the server still reports as staged,
        then the folders left empty, deepest first.

        Expiry never starts a server: while the user's is stopped the release is postponed. A release
        the user asked for starts it, as staging does.
        """
        if self._staged_through_mount(held):
            if held.settings.jupyter_home_mounts is None:
                raise ReleasePostponed("the Jupyter homes are no longer mounted into this service")
            mounted = self._mounted(held.username, held.destination, held.settings)
            return self._through_mount.release(replace(held, destination=mounted))
        final = "/".join(self._remote_parts(held.destination, held.settings))
        with hub_session(held.settings) as hub:
            contents = hub.ensure_server(held.username) if held.requested else hub.running_server(held.username)
            if contents is None:
                raise ReleasePostponed(f"the Jupyter server of {held.username} is not running")
            released = Released()
            for entry in held.entries:
                if entry.identity is not None:
                    _release_remote_file(contents, _joined(final, entry.path), entry, released)
            if held.is_dir:
                folders = sorted((entry.path for entry in held.entries if entry.identity is None), key=_depth)
                for path in [*reversed(folders), ""]:
                    _release_remote_folder(contents, _joined(final, path), released)
        return released

    def availability_problem(self, settings: Settings) -> str | None:
        if not settings.jupyterhub_url:
            return "no JupyterHub is configured at this site"
        if settings.jupyterhub_api_token is None:
            return "the service has no JupyterHub token"
        if settings.jupyter_write_mounted_homes and settings.jupyter_home_mounts is None:
            return "STAGING_JUPYTER_WRITE_MOUNTED_HOMES is on but STAGING_JUPYTER_HOME_MOUNTS is not set"
        return None

    def destination_label(self, username: str, destination: Destination, settings: Settings) -> str:
        path = "/".join(self._remote_parts(destination, settings))
        return f"{(settings.jupyterhub_url or '').rstrip('/')}/user/{quote(username)}/lab/tree/{quote(path)}"

    @staticmethod
    def _remote_parts(destination: Destination, settings: Settings) -> tuple[str, ...]:
        workdir = tuple(part for part in settings.jupyter_workdir.split("/") if part)
        return (*workdir, *destination.parts)

    @contextmanager
    def open_target(self, ctx: TransferContext) -> Iterator[RemoteTarget]:
        parts = self._remote_parts(ctx.destination, ctx.settings)
        final = "/".join(parts)
        digests = {entry.parts: _digests(entry) for entry in ctx.plan.files}
        with hub_session(ctx.settings) as hub:
            contents = hub.ensure_server(ctx.username)
            contents.make_dirs(parts[:-1])
            yield RemoteTarget(contents, final, self._temp(parts, ctx.job_id, ctx.attempt), digests)

    @staticmethod
    def _temp(parts: tuple[str, ...], job_id: int, attempt: int) -> str:
        # Jupyter servers refuse hidden names by default, so this temporary is visible while it grows.
        return "/".join((*parts[:-1], temp_name(job_id, attempt).lstrip(".")))

    def remove_temporary(self, target: RemoteTarget, ctx: TransferContext, attempt: int) -> None:
        parts = self._remote_parts(ctx.destination, ctx.settings)
        target.contents.delete(self._temp(parts, ctx.job_id, attempt))

    def remove_leftovers(self, ended: EndedJob) -> None:
        """Remove the job's temporaries through the mount, or through the user's server if it runs
        (never started for this)."""
        if ended.settings.jupyter_write_mounted_homes and ended.settings.jupyter_home_mounts is not None:
            mounted = self._mounted(ended.username, ended.destination, ended.settings)
            self._through_mount.remove_leftovers(replace(ended, destination=mounted))
            return
        parts = self._remote_parts(ended.destination, ended.settings)
        with hub_session(ended.settings) as hub:
            contents = hub.running_server(ended.username)
            if contents is None:
                log.warning(
                    "job %s: the Jupyter server of %s is not running; its temporaries stay until a later staging",
                    ended.job_id,
                    ended.username,
                )
                return
            for attempt in range(1, ended.attempts + 1):
                contents.delete(self._temp(parts, ended.job_id, attempt))

    def existing(self, target: RemoteTarget, ctx: TransferContext) -> list[FileChecksum] | None:
        plan, contents = ctx.plan, target.contents
        top = contents.get(target.final, checksum=not plan.is_dir)
        if top is None:
            return None
        if not plan.is_dir:
            if _same_file(top, plan.entries[0], target.digests[()][1]):
                return target.checksums(plan)
            raise self.conflict()
        wanted = {entry.parts: ("directory" if entry.is_dir else "file") for entry in plan.entries}
        if top.get("type") != "directory" or self._remote_tree(contents, target.final) != wanted:
            raise self.conflict()
        for entry in plan.files:
            model = contents.get("/".join((target.final, *entry.parts)), checksum=True)
            if model is None or not _same_file(model, entry, target.digests[entry.parts][1]):
                raise self.conflict()
        return target.checksums(plan)

    def _remote_tree(self, contents: JupyterContents, path: str) -> dict[tuple[str, ...], str]:
        found: dict[tuple[str, ...], str] = {}
        listing = contents.get(path, content=True) or {}
        for child in listing.get("content") or []:
            parts = (child["name"],)
            found[parts] = child["type"]
            if child["type"] == "directory":
                below = self._remote_tree(contents, f"{path}/{child['name']}")
                found.update({(*parts, *rest): kind for rest, kind in below.items()})
        return found

    def transfer(self, target: RemoteTarget, ctx: TransferContext) -> list[FileChecksum]:
        plan, contents = ctx.plan, target.contents
        total, done = plan.bytes_total, [0]
        if plan.is_dir:
            contents.mkdir(target.temp)
        for entry in plan.entries:
            path = "/".join((target.temp, *entry.parts))
            if entry.is_dir:
                contents.mkdir(path)
                continue
            fd = os.open(entry.real, READ_FLAGS)
            try:
                uploaded = contents.upload(
                    path,
                    fd,
                    entry.size,
                    ctx.settings.jupyter_chunk_bytes,
                    lambda sent: ctx.report_progress(done[0] + sent, total),
                )
            finally:
                os.close(fd)
            if uploaded != target.digests[entry.parts]:
                raise StagingError("source_changed", "the source changed during the upload")
            self._verify(contents, path, entry, uploaded[1])
            done[0] += entry.size
        ctx.confirm_held()
        self._publish(contents, target.temp, target.final)
        return target.checksums(plan)

    @staticmethod
    def _verify(contents: JupyterContents, path: str, entry: PlannedFile, sha256: str) -> None:
        model = contents.get(path, checksum=True)
        if model is None or not _same_file(model, entry, sha256):
            raise StagingError("verification_failed", "the uploaded file does not match its source")

    @staticmethod
    def _publish(contents: JupyterContents, temp: str, final: str) -> None:
        response = contents.rename(temp, final)
        if response.status_code == 409:
            raise DestinationAppeared(final)
        if response.status_code != 200:
            raise StagingError(
                "jupyter_upload_failed", f"the Jupyter server could not rename the upload (HTTP {response.status_code})"
            )

    def read_only(self, ctx: TransferContext, outcome: Outcome) -> tuple[bool | None, str | None]:
        """chmod the staged files where the user's Jupyter root is mounted into this service."""
        if outcome == "skipped":
            return None, None
        template = ctx.settings.jupyter_home_mounts
        if template is None:
            return False, "read-only could not be enforced: the user's Jupyter home is not mounted here"
        mounted = jupyter_home(template, ctx.username, self._remote_parts(ctx.destination, ctx.settings))
        try:
            with ExitStack() as stack, open_parent(mounted, create=False) as parent_fd:
                fd = os.open(mounted.name, READ_FLAGS, dir_fd=parent_fd)
                stack.callback(os.close, fd)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    dirs = DirCache(stack, fd)
                    for entry_parts, kind in list_tree(fd):
                        if kind == "file":
                            chmod_read_only(dirs.fd(entry_parts[:-1]), entry_parts[-1])
                else:
                    os.fchmod(fd, READ_ONLY_FILE_MODE)
        except StagingError as exc:
            return False, f"read-only could not be enforced at the mounted home ({exc.detail})"
        except OSError as exc:
            return False, f"read-only could not be enforced at the mounted home ({exc.strerror})"
        return True, None


def _joined(top: str, path: str) -> str:
    return f"{top}/{path}" if path else top


def _depth(path: str) -> int:
    return path.count("/")


def _release_remote_file(contents: JupyterContents, path: str, entry: PublishedEntry, released: Released) -> None:
    model = contents.get(path, checksum=True)
    if model is None:
        released.gone += 1
        return
    same = (
        model.get("type") == "file"
        and model.get("size") == entry.size
        and model.get("hash_algorithm", "sha256") == "sha256"
        and f"sha256:{model.get('hash')}" == entry.identity
    )
    if not same:  # changed, replaced, or a server that reports no hash: nothing proves it is ours
        released.kept.append(f"'{path}' is no longer the staged file, or its server cannot prove it; kept")
        return
    contents.delete(path)
    released.removed += 1


def _release_remote_folder(contents: JupyterContents, path: str, released: Released) -> None:
    model = contents.get(path, content=True)
    if model is None:
        return
    if model.get("type") != "directory" or model.get("content"):
        released.kept.append(f"folder '{path}' is not empty or was replaced; kept")
        return
    contents.delete(path)
