"""The public Python client of a staging service (httpx), for notebooks and scripts; the CLI uses it too.

    from skao_staging.client import StagingClient

    with StagingClient() as staging:
        request = staging.stage("sky:obs-0042", "data/obs-0042", method="jupyter_copy", lifetime="P7D")
        request.wait()          # a progress bar in a notebook, plain lines elsewhere

Where the service is: ``url``, else ``SKAO_STAGING_URL``, else ``STAGING_URL``, else the local default.
Who is asking: ``token``, else ``SKAO_STAGING_TOKEN``, else ``JUPYTERHUB_API_TOKEN`` (set inside every
JupyterHub single-user server, accepted where the site signs in JupyterHub tokens); sent as a bearer token.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from .errors import status_for

__all__ = ["DEFAULT_URL", "ApiError", "Progress", "StagingClient", "StagingRequest", "is_did"]

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_REQUEST_STATES = frozenset({"succeeded", "failed", "partially_failed", "cancelled"})
DID = re.compile(r"^[A-Za-z0-9_.\-]{1,25}:[^/].*$")  # a scope has no '/', a storage path's first part may

Progress = Callable[[dict[str, Any]], None]
"""Called with the request's state (``GET /api/v1/requests/{id}``) each time it is read while waiting."""


class ApiError(Exception):
    """The service refused or failed a call: its HTTP status, machine-readable code and reason."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{detail} ({code})")
        self.status, self.code, self.detail, self.body = status, code, detail, body or {}

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code, "http_error", response.text[:500] or response.reason_phrase)
        if not isinstance(body, dict):
            return cls(response.status_code, "http_error", str(body)[:500])
        return cls(response.status_code, str(body.get("code", "http_error")), str(body.get("detail")), body)


def is_did(source: str) -> bool:
    """Whether a source names a Rucio DID (``scope:name``) rather than a storage path."""
    return bool(DID.match(source))


class StagingClient:
    """One staging service, as one user (or as an admin acting for ``username`` where a call takes it)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = url or os.environ.get("SKAO_STAGING_URL") or os.environ.get("STAGING_URL") or DEFAULT_URL
        token = token or os.environ.get("SKAO_STAGING_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> StagingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        """One API call; its JSON answer, or ``ApiError`` when the status is not ``expect``."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code != expect:
            raise ApiError.of(response)
        return response.json()

    # -- staging --------------------------------------------------------------------------------

    def stage(
        self,
        source: str | list[str],
        destination: str,
        *,
        method: str = "local_copy",
        lifetime: str | int | None = None,
        username: str | None = None,
        did: bool | None = None,
        request_replication: bool = False,
    ) -> StagingRequest:
        """Stage a storage path or a DID (or several, into the folder ``destination``); a handle on the request.

        ``did`` says whether sources are DIDs; by default, a source is a DID when it looks like
        ``scope:name``. Several sources land as ``destination/<their name>``. Raises ``ApiError`` when
        every item was refused; otherwise the refusals are in ``StagingRequest.refused``.
        """
        sources = [source] if isinstance(source, str) else list(source)
        items = [
            self._item(one, destination if isinstance(source, str) else f"{destination}/{_name(one)}", method, did)
            | ({"request_replication": True} if request_replication else {})
            for one in sources
        ]
        body: dict[str, Any] = {"items": items}
        if username:
            body["username"] = username
        if lifetime is not None:
            body["lifetime"] = str(lifetime)
        accepted = self.call("POST", "/api/v1/jobs", json=body, expect=202)
        request = StagingRequest(self, accepted)
        if request.refused and len(request.refused) == len(accepted["items"]):
            error = request.refused[0]["error"]
            raise ApiError(status_for(error["code"]), error["code"], error["detail"], error)
        return request

    @staticmethod
    def _item(source: str, destination: str, method: str, did: bool | None) -> dict[str, Any]:
        named = "did" if (is_did(source) if did is None else did) else "local_path_on_storage"
        return {"method": method, named: source, "relative_path": destination}

    def request(self, request_id: str) -> StagingRequest:
        """A handle on an earlier request."""
        return StagingRequest(self, {"request_id": request_id, "items": []})

    def job(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self.call("GET", f"/api/v1/jobs/{job_id}")
        return job

    def jobs(self, **filters: str | int) -> list[dict[str, Any]]:
        """Jobs, newest first; ``filters`` as ``GET /api/v1/jobs`` takes them (status, request, limit...)."""
        page: dict[str, Any] = self.call("GET", "/api/v1/jobs", params=filters)
        jobs: list[dict[str, Any]] = page["jobs"]
        return jobs

    def cancel(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = self.call("DELETE", f"/api/v1/jobs/{job_id}", expect=202)
        return job

    def release(self, job_id: int) -> dict[str, Any]:
        """Remove a job's staged data now (what is still as staged; the rest is kept and named)."""
        job: dict[str, Any] = self.call("DELETE", f"/api/v1/jobs/{job_id}/data")
        return job

    def extend(self, job_id: int, lifetime: str | int) -> dict[str, Any]:
        """Keep a job's staged data for ``lifetime`` from now."""
        job: dict[str, Any] = self.call("PATCH", f"/api/v1/jobs/{job_id}", json={"lifetime": str(lifetime)})
        return job

    def download(self, path: str, target: Path, *, username: str | None = None) -> Iterator[tuple[int, int | None]]:
        """Download a storage file (or a folder, as one ZIP) to ``target``, a new file.

        Yields (bytes so far, total or None) as it goes; a failed download leaves no file behind.
        """
        params = {"path": path, **({"username": username} if username else {})}
        with self.http.stream("GET", "/api/v1/download", params=params) as response:
            if response.status_code != 200:
                response.read()
                raise ApiError.of(response)
            total = int(response.headers.get("content-length", 0)) or None
            done = 0
            try:
                with target.open("xb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        done += len(chunk)
                        yield done, total
            except BaseException:
                target.unlink(missing_ok=True)
                raise

    # -- what is there --------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        me: dict[str, Any] = self.call("GET", "/api/v1/me")
        return me

    def config(self) -> dict[str, Any]:
        """The site's methods, lifetimes, quota and whether DIDs are enabled."""
        config: dict[str, Any] = self.call("GET", "/api/v1/config")
        return config

    def list_storage(self, path: str = "", *, limit: int = 1000) -> dict[str, Any]:
        """The storage roots, a folder's entries, or one file, as the web UI browses them."""
        listing: dict[str, Any] = self.call("GET", "/api/v1/storage", params={"path": path, "limit": limit})
        return listing

    def search_dids(self, scope: str, name: str = "*", *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        page = self.call("GET", "/api/v1/dids", params={"scope": scope, "name": name, "limit": limit, "offset": offset})
        dids: list[dict[str, Any]] = page["dids"]
        return dids

    def describe_did(self, did: str) -> dict[str, Any]:
        """A DID's type, files, bytes and whether it is at this site."""
        scope, _, name = did.partition(":")
        info: dict[str, Any] = self.call("GET", f"/api/v1/dids/{scope}/{name}")
        return info

    def usage(self, username: str | None = None) -> dict[str, Any]:
        """What a user holds now, by method, against the quota, and what expires within 24 hours."""
        usage: dict[str, Any] = self.call("GET", "/api/v1/usage", params={"username": username} if username else {})
        return usage


class StagingRequest:
    """A submitted request: its jobs, their progress, waiting for and cancelling them."""

    def __init__(self, client: StagingClient, accepted: dict[str, Any]) -> None:
        self.client = client
        self.id: str = accepted["request_id"]
        self.items: list[dict[str, Any]] = accepted["items"]
        self.refused: list[dict[str, Any]] = [item for item in self.items if item.get("error")]

    def __repr__(self) -> str:
        return f"<StagingRequest {self.id} items={len(self.items)} refused={len(self.refused)}>"

    def state(self) -> dict[str, Any]:
        """Counts by status, bytes done of total, and the overall state (active until every job ended)."""
        state: dict[str, Any] = self.client.call("GET", f"/api/v1/requests/{self.id}")
        return state

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of the request, oldest first."""
        jobs: list[dict[str, Any]] = []
        while True:
            page = self.client.call(
                "GET", "/api/v1/jobs", params={"request": self.id, "limit": 500, "offset": len(jobs)}
            )
            jobs.extend(page["jobs"])
            if not page["jobs"] or len(jobs) >= page["total"]:
                return sorted(jobs, key=lambda job: int(job["job_id"]))

    def wait(
        self, progress: Progress | bool = True, *, timeout: float | None = None, interval: float = 0.5
    ) -> dict[str, Any]:
        """Wait until every job ended; the final state. ``progress``: True shows it (a bar in a notebook,
        plain lines elsewhere), False shows nothing, or a callable receives each state read."""
        report = _default_progress(self.id) if progress is True else progress or None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state()
            if report is not None:
                report(state)
            if state["state"] in FINAL_REQUEST_STATES:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"request {self.id} is still {state['state']} after {timeout}s")
            time.sleep(interval)

    def cancel(self) -> dict[str, Any]:
        """Cancel every job of the request that has not ended; the request's state."""
        state: dict[str, Any] = self.client.call("DELETE", f"/api/v1/requests/{self.id}", expect=202)
        return state

    def release(self) -> dict[str, Any]:
        """Remove the staged data of every job of the request now."""
        state: dict[str, Any] = self.client.call("DELETE", f"/api/v1/requests/{self.id}/data")
        return state


def _name(source: str) -> str:
    return source.rstrip("/").rpartition("/")[2].rpartition(":")[2]


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None)
    return get_ipython is not None and type(get_ipython()).__name__ == "ZMQInteractiveShell"


def _default_progress(request_id: str) -> Progress:
    return _notebook_bar(request_id) if _in_notebook() else _plain_lines(request_id)


def _summary(state: dict[str, Any]) -> str:
    counts = ", ".join(f"{count} {status}" for status, count in sorted(state["counts"].items()))
    return f"{state['jobs']} jobs ({counts}), {state['bytes_done']} of {state['bytes_total']} bytes"


def _plain_lines(request_id: str, every: float = 2.0) -> Progress:
    """A line on stderr when the request changed, at most every ``every`` seconds, and at its end."""
    last: dict[str, Any] = {"line": None, "at": 0.0}

    def report(state: dict[str, Any]) -> None:
        line = f"request {request_id[:8]} {state['state']}: {_summary(state)}"
        ended = state["state"] in FINAL_REQUEST_STATES
        if line != last["line"] and (ended or time.monotonic() - last["at"] >= every):
            print(line, file=sys.stderr, flush=True)
            last.update(line=line, at=time.monotonic())

    return report


def _notebook_bar(request_id: str) -> Progress:
    """A tqdm bar of bytes in the notebook's output."""
    from tqdm.auto import tqdm

    bar = tqdm(total=None, unit="B", unit_scale=True, desc=f"request {request_id[:8]}")

    def report(state: dict[str, Any]) -> None:
        bar.total = state["bytes_total"] or None
        bar.n = state["bytes_done"]
        bar.set_postfix_str(_summary(state), refresh=False)
        bar.refresh()
        if state["state"] in FINAL_REQUEST_STATES:
            bar.close()

    return report
