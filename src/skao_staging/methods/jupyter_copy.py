"""jupyter_copy: stage into the user's Jupyter server through JupyterHub.

Server status -> start and wait when down -> parent folders -> duplicate check (size and the
server's sha256) -> chunked upload to a temporary name -> verify -> rename into place (PATCH, which
refuses to replace) -> read-only where the user's home is mounted into this service.
"""

from __future__ import annotations

import hashlib
import os
import stat
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..checksum import READ_CHUNK, adler32, format_adler32, manifest_checksum
from ..config import Settings
from ..errors import DestinationAppeared, StagingError
from ..fsops import READ_ONLY_FILE_MODE, temp_name
from ..jupyter import JupyterContents, hub_session
from ..paths import Destination, SourceEntry, open_parent
from .base import Outcome, StagingMethod, TransferContext, TransferResult
from .tree import DirCache, SourcePlan, list_tree

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _digests(path: Path) -> tuple[int, str]:
    """adler32 (recorded) and sha256 (what Jupyter servers report) of a source file."""
    adler, sha = 1, hashlib.sha256()
    fd = os.open(path, _READ_FLAGS)
    try:
        buffer = memoryview(bytearray(READ_CHUNK))
        offset = 0
        while count := os.preadv(fd, [buffer], offset):
            adler = adler32(buffer[:count], adler)
            sha.update(buffer[:count])
            offset += count
    finally:
        os.close(fd)
    return adler, sha.hexdigest()


def _same_file(model: dict[str, Any], entry: SourceEntry, sha256: str) -> bool:
    if model.get("type") != "file" or model.get("size") != entry.size:
        return False
    remote_hash = model.get("hash")
    if remote_hash and model.get("hash_algorithm", "sha256") == "sha256":
        return bool(remote_hash == sha256)
    return True  # a server that offers no hash: equal sizes are all that can be compared


class JupyterCopy(StagingMethod):
    name = "jupyter_copy"
    description = "Upload into your Jupyter server (started for you when it is stopped)."

    def availability_problem(self, settings: Settings) -> str | None:
        if not settings.jupyterhub_url:
            return "no JupyterHub is configured at this site"
        if settings.jupyterhub_api_token is None:
            return "the service has no JupyterHub token"
        return None

    def destination_label(self, username: str, destination: Destination, settings: Settings) -> str:
        path = "/".join(self._remote_parts(destination, settings))
        return f"{(settings.jupyterhub_url or '').rstrip('/')}/user/{quote(username)}/lab/tree/{quote(path)}"

    @staticmethod
    def _remote_parts(destination: Destination, settings: Settings) -> tuple[str, ...]:
        workdir = tuple(part for part in settings.jupyter_workdir.split("/") if part)
        return (*workdir, *destination.parts)

    def stage(self, ctx: TransferContext) -> TransferResult:
        plan = SourcePlan.of(ctx.source, ctx.roots)
        parts = self._remote_parts(ctx.destination, ctx.settings)
        # Jupyter servers refuse hidden names by default, so this temporary is visible while it grows.
        final, temp = "/".join(parts), "/".join((*parts[:-1], temp_name(ctx.job_id).lstrip(".")))
        digests = {entry.parts: _digests(entry.real) for entry in plan.files}
        with hub_session(ctx.settings) as hub:
            contents = hub.ensure_server(ctx.username)
            contents.make_dirs(parts[:-1])
            contents.delete(temp)  # left by an earlier attempt that died
            if self._present(contents, final, plan, digests):
                return self._result("skipped", plan, digests, read_only=None, note=None)
            try:
                self._upload(contents, temp, plan, digests, ctx)
                self._publish(contents, temp, final)
            except DestinationAppeared:
                if self._present(contents, final, plan, digests):
                    return self._result("skipped", plan, digests, read_only=None, note=None)
                raise self._conflict() from None
            finally:
                with suppress(StagingError):
                    contents.delete(temp)
        read_only, note = self._make_read_only(ctx, parts)
        return self._result("succeeded", plan, digests, read_only=read_only, note=note)

    @staticmethod
    def _conflict() -> StagingError:
        return StagingError("destination_exists", "the destination already holds different content")

    def _present(
        self, contents: JupyterContents, final: str, plan: SourcePlan, digests: dict[tuple[str, ...], tuple[int, str]]
    ) -> bool:
        """True when the destination holds this content already; raise when it holds other content."""
        top = contents.get(final, checksum=not plan.is_dir)
        if top is None:
            return False
        if not plan.is_dir:
            if _same_file(top, plan.entries[0], digests[()][1]):
                return True
            raise self._conflict()
        if top.get("type") != "directory" or self._remote_tree(contents, final) != {
            entry.parts: ("directory" if entry.is_dir else "file") for entry in plan.entries
        }:
            raise self._conflict()
        for entry in plan.files:
            model = contents.get("/".join((final, *entry.parts)), checksum=True)
            if model is None or not _same_file(model, entry, digests[entry.parts][1]):
                raise self._conflict()
        return True

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

    def _upload(
        self,
        contents: JupyterContents,
        temp: str,
        plan: SourcePlan,
        digests: dict[tuple[str, ...], tuple[int, str]],
        ctx: TransferContext,
    ) -> None:
        total, done = plan.bytes_total, [0]
        if plan.is_dir:
            contents.mkdir(temp)
        for entry in plan.entries:
            path = "/".join((temp, *entry.parts))
            if entry.is_dir:
                contents.mkdir(path)
                continue
            fd = os.open(entry.real, _READ_FLAGS)
            try:
                adler, sha = contents.upload(
                    path,
                    fd,
                    entry.size,
                    ctx.settings.jupyter_chunk_bytes,
                    lambda sent: ctx.report_progress(done[0] + sent, total),
                )
            finally:
                os.close(fd)
            if (adler, sha) != digests[entry.parts]:
                raise StagingError("source_changed", "the source changed during the upload")
            self._verify(contents, path, entry, sha)
            done[0] += entry.size

    @staticmethod
    def _verify(contents: JupyterContents, path: str, entry: SourceEntry, sha256: str) -> None:
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

    @staticmethod
    def _make_read_only(ctx: TransferContext, parts: tuple[str, ...]) -> tuple[bool, str | None]:
        """chmod the staged files where the user's Jupyter root is mounted into this service."""
        template = ctx.settings.jupyter_home_mounts
        if template is None:
            return False, "read-only could not be enforced: the user's Jupyter home is not mounted here"
        mounted = Destination(Path(template.replace("{username}", ctx.username)), parts)
        try:
            with ExitStack() as stack, open_parent(mounted, create=False) as parent_fd:
                fd = os.open(mounted.name, _READ_FLAGS, dir_fd=parent_fd)
                stack.callback(os.close, fd)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    dirs = DirCache(stack, fd)
                    for entry_parts, kind in list_tree(fd):
                        if kind == "file":
                            _chmod_read_only(dirs.fd(entry_parts[:-1]), entry_parts[-1])
                else:
                    os.fchmod(fd, READ_ONLY_FILE_MODE)
        except StagingError as exc:
            return False, f"read-only could not be enforced at the mounted home ({exc.detail})"
        except OSError as exc:
            return False, f"read-only could not be enforced at the mounted home ({exc.strerror})"
        return True, None

    @staticmethod
    def _result(
        outcome: Outcome,
        plan: SourcePlan,
        digests: dict[tuple[str, ...], tuple[int, str]],
        *,
        read_only: bool | None,
        note: str | None,
    ) -> TransferResult:
        if plan.is_dir:
            checksum = manifest_checksum(
                ("/".join(entry.parts), entry.size, digests[entry.parts][0]) for entry in plan.files
            )
        else:
            checksum = format_adler32(digests[()][0])
        return TransferResult(
            outcome=outcome,
            bytes=plan.bytes_total,
            checksum=checksum,
            read_only=read_only,
            files=len(plan.files),
            note=note,
        )


def _chmod_read_only(dir_fd: int, name: str) -> None:
    fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(fd, READ_ONLY_FILE_MODE)
    finally:
        os.close(fd)
