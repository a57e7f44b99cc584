"""JupyterHub and Jupyter Server clients (httpx): server status, start and wait, Contents API.

The service authenticates with a JupyterHub service token (``Authorization: token ...``) that needs
the scopes ``read:users``, ``read:servers``, ``servers`` and ``access:servers`` (plus ``admin:users``
when unknown users may be created). Uploads use the Contents API's chunked protocol, streamed from
disk with one chunk in memory at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from .checksum import adler32
from .config import Settings
from .errors import StagingError
from .logs import get_logger

log = get_logger("jupyter")


def _hub_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    return str(body.get("message") or body.get("reason") or body)[:500]


def _quote_path(path: str) -> str:
    return quote(path.strip("/"), safe="/")


class JupyterHub:
    """The hub's REST API, as the staging service uses it."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jupyterhub_url or settings.jupyterhub_api_token is None:
            raise StagingError("method_not_enabled", "jupyter_copy is not configured at this site")
        self.settings = settings
        self.url = settings.jupyterhub_url.rstrip("/")
        token = settings.jupyterhub_api_token.get_secret_value()
        timeout = httpx.Timeout(settings.jupyter_request_timeout_seconds, connect=10)
        self.client = httpx.Client(headers={"Authorization": f"token {token}"}, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A hub API call; an unreachable hub and a rejected token become clear errors."""
        try:
            response = self.client.request(method, f"{self.url}/hub/api{path}", **kwargs)
        except httpx.TransportError as exc:
            raise StagingError("jupyter_unavailable", f"JupyterHub cannot be reached ({type(exc).__name__})") from exc
        self._raise_for_auth(response)
        return response

    @staticmethod
    def _raise_for_auth(response: httpx.Response) -> None:
        if response.status_code == 401:
            raise StagingError("jupyter_forbidden", "JupyterHub rejected the service token")
        if response.status_code == 403:
            raise StagingError("jupyter_forbidden", f"JupyterHub refused the service: {_hub_message(response)}")

    def user(self, name: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/users/{quote(name)}")
        if response.status_code == 404:
            return None
        self._expect(response, 200, "read the user")
        user: dict[str, Any] = response.json()
        return user

    def create_user(self, name: str) -> dict[str, Any]:
        response = self.request("POST", f"/users/{quote(name)}")
        if response.status_code != 409:
            self._expect(response, 201, "create the user")
        user = self.user(name)
        assert user is not None
        return user

    def _expect(self, response: httpx.Response, status: int, action: str) -> None:
        if response.status_code != status:
            raise StagingError(
                "jupyter_error",
                f"JupyterHub could not {action} (HTTP {response.status_code}: {_hub_message(response)})",
            )

    def known_user(self, name: str) -> dict[str, Any]:
        """The hub's model of the user, who is created when the site allows it; else ``jupyter_user_unknown``."""
        user = self.user(name)
        if user is None:
            if not self.settings.jupyter_create_users:
                raise StagingError("jupyter_user_unknown", f"JupyterHub has no user '{name}'")
            user = self.create_user(name)
        return user

    def ensure_server(self, name: str) -> JupyterContents:
        """The user's running default server, started and awaited when it is not running."""
        user = self.known_user(name)
        server = self._wait_until_settled(name, user)
        if not (server and server.get("ready")):
            server = self._start(name)
        return JupyterContents(self, f"{self.url}{server['url'].rstrip('/')}")

    def running_server(self, name: str) -> JupyterContents | None:
        """The user's default server if it is running and ready; never starts one."""
        server = ((self.user(name) or {}).get("servers") or {}).get("")
        if not (server and server.get("ready")):
            return None
        return JupyterContents(self, f"{self.url}{server['url'].rstrip('/')}")

    def _wait_until_settled(self, name: str, user: dict[str, Any]) -> dict[str, Any] | None:
        """Let a spawn or a stop already under way finish first."""
        deadline = time.monotonic() + self.settings.jupyter_spawn_timeout_seconds
        server: dict[str, Any] | None = user.get("servers", {}).get("")
        while server and server.get("pending") and time.monotonic() < deadline:
            if server["pending"] == "spawn":
                return self._follow_progress(name, deadline)
            time.sleep(0.5)
            refreshed = self.user(name) or {}
            server = refreshed.get("servers", {}).get("")
        return server

    def _start(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.jupyter_spawn_timeout_seconds
        log.info("starting the Jupyter server of %s", name)
        try:
            # The hub holds this request for up to its slow_spawn_timeout (10 s): the progress
            # events below tell more, and sooner, so do not wait for the answer.
            response = self.client.post(
                f"{self.url}/hub/api/users/{quote(name)}/server", timeout=httpx.Timeout(10, read=2)
            )
        except httpx.ReadTimeout:
            return self._follow_progress(name, deadline)
        except httpx.TransportError as exc:
            raise StagingError("jupyter_unavailable", f"JupyterHub cannot be reached ({type(exc).__name__})") from exc
        self._raise_for_auth(response)
        if response.status_code not in (201, 202, 400):  # 400: already running or pending
            raise StagingError(
                "jupyter_spawn_failed",
                f"JupyterHub could not start the server of '{name}': {_hub_message(response)}",
            )
        return self._follow_progress(name, deadline)

    def _follow_progress(self, name: str, deadline: float) -> dict[str, Any]:
        """Read the hub's progress events until the server is ready, fails, or time runs out."""
        path = f"{self.url}/hub/api/users/{quote(name)}/server/progress"
        last_message = "no progress reported"
        remaining = max(1.0, deadline - time.monotonic())
        try:
            with self.client.stream("GET", path, timeout=httpx.Timeout(10, read=remaining)) as stream:
                self._raise_for_auth(stream)
                for event in _server_sent_events(stream, deadline):
                    last_message = str(event.get("message") or last_message)
                    if event.get("failed"):
                        raise StagingError(
                            "jupyter_spawn_failed", f"the Jupyter server of '{name}' failed to start: {last_message}"
                        )
                    if event.get("ready"):
                        break
        except httpx.ReadTimeout:
            pass  # no event before the deadline: reported below with the last message seen
        except httpx.TransportError:
            pass  # the stream broke off: the user model below says where things stand
        return self._ready_server(name, deadline, last_message)

    def _ready_server(self, name: str, deadline: float, last_message: str) -> dict[str, Any]:
        while True:
            server = ((self.user(name) or {}).get("servers") or {}).get("")
            if server and server.get("ready"):
                return dict(server)
            if not server or not server.get("pending"):
                raise StagingError(
                    "jupyter_spawn_failed", f"the Jupyter server of '{name}' did not start: {last_message}"
                )
            if time.monotonic() > deadline:
                raise StagingError(
                    "jupyter_spawn_failed",
                    f"the Jupyter server of '{name}' was not ready within "
                    f"{self.settings.jupyter_spawn_timeout_seconds:g}s: {last_message}",
                )
            time.sleep(0.5)


def _server_sent_events(stream: httpx.Response, deadline: float) -> Iterator[dict[str, Any]]:
    for line in stream.iter_lines():
        if time.monotonic() > deadline:
            return
        if line.startswith("data:"):
            try:
                yield json.loads(line[5:].strip())
            except ValueError:
                continue


class JupyterContents:
    """The Contents API of one user's server, reached through the hub's proxy."""

    def __init__(self, hub: JupyterHub, server_url: str) -> None:
        self.hub = hub
        self.base = f"{server_url}/api/contents"

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.hub.client.request(method, f"{self.base}/{_quote_path(path)}", **kwargs)
        except httpx.TransportError as exc:
            raise StagingError(
                "jupyter_unavailable", f"the Jupyter server cannot be reached ({type(exc).__name__})"
            ) from exc
        if response.status_code in (401, 403):
            raise StagingError("jupyter_forbidden", f"the Jupyter server refused the service: {_hub_message(response)}")
        return response

    def _fail(self, response: httpx.Response, action: str) -> StagingError:
        return StagingError(
            "jupyter_upload_failed",
            f"the Jupyter server could not {action} (HTTP {response.status_code}: {_hub_message(response)})",
        )

    def get(self, path: str, *, content: bool = False, checksum: bool = False) -> dict[str, Any] | None:
        params = {"content": "1" if content else "0"}
        if checksum:
            params["hash"] = "1"
        response = self._call("GET", path, params=params)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"read '{path}'")
        model: dict[str, Any] = response.json()
        return model

    def make_dirs(self, parts: tuple[str, ...]) -> None:
        """Create each missing folder of ``parts`` (the API makes one level per request)."""
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            existing = self.get(path)
            if existing is not None:
                if existing.get("type") != "directory":
                    raise StagingError("destination_blocked", "a file stands where the destination needs a folder")
                continue
            self.mkdir(path)

    def mkdir(self, path: str) -> None:
        response = self._call("PUT", path, json={"type": "directory"})
        if response.status_code not in (200, 201):
            raise self._fail(response, f"create the folder '{path}'")

    def delete(self, path: str) -> None:
        response = self._call("DELETE", path)
        if response.status_code not in (204, 404):
            raise self._fail(response, f"remove '{path}'")

    def rename(self, old: str, new: str) -> httpx.Response:
        return self._call("PATCH", old, json={"path": new.strip("/")})

    def upload(
        self, path: str, fd: int, size: int, chunk_bytes: int, progress: Callable[[int], None]
    ) -> tuple[int, str]:
        """Stream an open file to ``path`` in chunks; return its (adler32, sha256 hex)."""
        adler, sha = 1, hashlib.sha256()
        name = path.rsplit("/", 1)[-1]
        if size <= chunk_bytes:  # one request, no chunk protocol
            data = os.pread(fd, size, 0)
            self._put(path, _file_body(name, None, data))
            sha.update(data)
            progress(len(data))
            return adler32(data), sha.hexdigest()
        offset, number = 0, 1
        while offset < size:
            data = os.pread(fd, min(chunk_bytes, size - offset), offset)
            if not data:
                raise StagingError("source_changed", "the source became shorter during the upload")
            offset += len(data)
            self._put(path, _file_body(name, -1 if offset >= size else number, data))
            adler, number = adler32(data, adler), number + 1
            sha.update(data)
            progress(offset)
        return adler, sha.hexdigest()

    def _put(self, path: str, body: bytes) -> None:
        response = self._call("PUT", path, content=body, headers={"Content-Type": "application/json"})
        if response.status_code not in (200, 201):
            raise self._fail(response, f"write '{path}'")


def _file_body(name: str, chunk: int | None, data: bytes) -> bytes:
    """A Contents API file model as JSON bytes, built without a str copy of the base64 content."""
    model: dict[str, Any] = {"type": "file", "format": "base64", "name": name}
    if chunk is not None:
        model["chunk"] = chunk
    head = json.dumps(model)[:-1].encode()  # the model without its closing brace
    return b"".join((head, b', "content": "', base64.b64encode(data), b'"}'))


@contextmanager
def hub_session(settings: Settings) -> Iterator[JupyterHub]:
    hub = JupyterHub(settings)
    try:
        yield hub
    finally:
        hub.close()
