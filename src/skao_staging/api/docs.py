"""The interactive API documentation, served with its own assets by this service.

``/docs`` (Swagger UI) loads its script and style from ``/docs-assets/`` (the copies bundled by the
``fastapi-offline`` package), never from a CDN, so it works at an offline site. The page carries a
Content-Security-Policy that allows exactly its own inline start-up script (by its hash), the
styles and images Swagger UI creates, and nothing else. There is no ``/redoc``: ReDoc fetches its
logo from a CDN whatever its options, which an offline site and this policy refuse; the same
reference is in the Sphinx documentation (docs/reference/http-api.md).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs-assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page, allowed to run its inline scripts (by sha256) and the assets of this service only."""
    body = bytes(page.body).decode()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; object-src 'none'"
    )
    return page


def mount_docs(app: FastAPI) -> None:
    """Serve /docs and its assets (create the app with ``docs_url=None, redoc_url=None``)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url, title = app.openapi_url or "/openapi.json", f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=title,
                swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{PREFIX}/favicon.png",
            )
        )
