"""skao-staging in JupyterLab: a "Data staging" panel, and the server extension it talks to.

The browser talks only to its own Jupyter server (``/skao-staging/api/...``, XSRF-protected and
signed in as every Jupyter handler is); the server extension forwards those calls to the staging
service at ``SKAO_STAGING_URL`` with the server's JupyterHub token, so no token reaches the browser.
"""

from __future__ import annotations

from typing import Any

from .handlers import setup_handlers

__version__ = "0.1.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "skao-staging-jupyterlab"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "skao_staging_jupyterlab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    setup_handlers(server_app.web_app, server_app.log)
