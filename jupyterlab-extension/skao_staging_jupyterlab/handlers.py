"""The server side of the panel: ``/skao-staging/api/<path>`` forwarded to the staging service.

Only the calls the panel makes are forwarded (``FORWARDED``); each carries the server's JupyterHub
token (``SKAO_STAGING_TOKEN`` if set, else ``JUPYTERHUB_API_TOKEN``), so the service acts for this
server's user and the browser never holds a token. Jupyter Server's ``APIHandler`` signs the caller in
and checks the XSRF token of every call that changes something.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

FORWARDED: dict[str, re.Pattern[str]] = {
    "GET": re.compile(r"config|me|storage|dids|dids/[^/]+/.+|jobs|jobs/\d+|requests/[\w-]+|usage|events"),
    "POST": re.compile(r"jobs|jobs/\d+/retry"),
    "PATCH": re.compile(r"jobs/\d+|requests/[\w-]+"),
    "DELETE": re.compile(r"jobs/\d+|jobs/\d+/data|requests/[\w-]+|requests/[\w-]+/data"),
}
STREAMED = {"events"}  # Server-Sent Events: passed on as they arrive
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
STREAM_TIMEOUT = httpx.Timeout(None, connect=10.0)


class StagingService:
    """Where the staging service is and how this server signs in to it (from the environment)."""

    def __init__(self) -> None:
        self.url = (os.environ.get("SKAO_STAGING_URL") or "").rstrip("/")
        token = os.environ.get("SKAO_STAGING_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(timeout=TIMEOUT, headers=self.headers)


class ForwardingHandler(APIHandler):
    """One call of the panel, forwarded to the staging service and its answer passed back."""

    def initialize(self, service: StagingService) -> None:
        self.service = service

    @web.authenticated
    async def get(self, path: str) -> None:
        await self._forward("GET", path)

    @web.authenticated
    async def post(self, path: str) -> None:
        await self._forward("POST", path)

    @web.authenticated
    async def patch(self, path: str) -> None:
        await self._forward("PATCH", path)

    @web.authenticated
    async def delete(self, path: str) -> None:
        await self._forward("DELETE", path)

    async def _forward(self, method: str, path: str) -> None:
        if not FORWARDED[method].fullmatch(path):
            return self._error(404, "not_forwarded", f"{method} {path} is not a call of the staging panel")
        if not self.service.url:
            return self._error(503, "staging_not_configured", "SKAO_STAGING_URL is not set in this server")
        url = f"{self.service.url}/api/v1/{path}"
        params = httpx.QueryParams(
            [
                (name, self.decode_argument(value, name))
                for name, values in self.request.query_arguments.items()
                for value in values
                if name != "_xsrf"  # this server's own check, not the service's business
            ]
        )
        if path in STREAMED:
            return await self._stream(url, params)
        body = self.request.body if method in ("POST", "PATCH") else None
        try:
            response = await self.service.client.request(
                method, url, params=params, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.TransportError as exc:
            return self._error(
                502, "staging_unavailable", f"the staging service cannot be reached ({type(exc).__name__})"
            )
        self.set_status(response.status_code)
        self.set_header("Content-Type", response.headers.get("content-type", "application/json"))
        self.finish(response.content)

    async def _stream(self, url: str, params: httpx.QueryParams) -> None:
        try:
            async with self.service.client.stream("GET", url, params=params, timeout=STREAM_TIMEOUT) as response:
                self.set_status(response.status_code)
                self.set_header("Content-Type", response.headers.get("content-type", "text/event-stream"))
                self.set_header("Cache-Control", "no-cache")
                self.set_header("X-Accel-Buffering", "no")
                async for chunk in response.aiter_raw():
                    self.write(chunk)
                    await self.flush()
        except httpx.TransportError as exc:
            if not self._headers_written:
                return self._error(502, "staging_unavailable", f"the event stream broke off ({type(exc).__name__})")
        except StreamClosedError:
            return None  # the browser went away
        self.finish()

    def _error(self, status: int, code: str, detail: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"detail": detail, "code": code}))


def setup_handlers(web_app: Any, log: Any) -> None:
    service = StagingService()
    route = url_path_join(web_app.settings["base_url"], "skao-staging", "api", "(.*)")
    web_app.add_handlers(".*$", [(route, ForwardingHandler, {"service": service})])
    where = service.url or "nowhere: SKAO_STAGING_URL is not set"
    log.info("skao-staging panel: forwarding to %s (%s)", where, "signed in" if service.headers else "no token")
