"""The web frontend: the built single-page app under ``skao_staging/web``, served at ``/``.

It is mounted after every API route, so API paths keep precedence. Without a build, ``/`` explains
how to make one instead of answering 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>skao-staging</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>skao-staging is running</h1>
<p>The web frontend has not been built into this installation. Build it with</p>
<pre>npm --prefix frontend ci &amp;&amp; npm --prefix frontend run build</pre>
<p>(<code>scripts/serve</code> does this when npm is installed), then restart the service.</p>
<p>The API works without it: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


class FrontendFiles(StaticFiles):
    """Static files where hashed assets are cached for good and the page itself is always revalidated."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if path.startswith("assets/"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def mount_frontend(app: FastAPI, directory: Path = WEB_DIR) -> None:
    if (directory / "index.html").is_file():
        app.mount("/", FrontendFiles(directory=directory, html=True), name="frontend")
        return

    @app.get("/", include_in_schema=False)
    def frontend_missing() -> HTMLResponse:
        return HTMLResponse(NOT_BUILT)
