"""The JupyterLab extension's server part: installed and enabled, and forwarding the panel's calls to a
real staging service with the server's hub token: sign-in, XSRF, errors, the event stream, no token leak.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import LiveService, free_port, live_service
from hub.harness import Hub

BIN = Path(sys.executable).parent


@contextmanager
def jupyter_server(root: Path, environment: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A standalone Jupyter Server (the extension is enabled by its installed config); its URL and token."""
    port, token = free_port(), secrets.token_hex(16)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SKAO_STAGING_", "JUPYTERHUB_"))}
    log = open(root / f"jupyter-{port}.log", "wb")  # noqa: SIM115 - closed below
    command = [str(BIN / "jupyter"), "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1"]
    process = subprocess.Popen(
        [*command, f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        env={**env, **environment, "PATH": f"{BIN}:{env.get('PATH', '')}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/status", headers={"Authorization": f"token {token}"}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (root / f"jupyter-{port}.log").read_text()
            time.sleep(0.2)
        yield url, token
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
        log.close()


@pytest.fixture(scope="module")
def staging(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    server, live = live_service(
        tmp_path_factory.mktemp("panelstaging"),
        auth_mode="header",
        trusted_proxies=["192.0.2.0/32"],  # nobody: only hub tokens sign in
        jupyterhub_url=hub.url,
        jupyterhub_api_token=hub.token,
        jupyterhub_token_auth=True,
    )
    live.write_source("obs/notes.txt", b"notes\n")
    with server:
        yield live


@pytest.fixture(scope="module")
def forwarding(
    hub: Hub, staging: LiveService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str, str]]:
    """A Jupyter Server of a hub user, forwarding to ``staging``: its URL, its own token, the user, the hub token."""
    person = f"p{uuid.uuid4().hex[:8]}"
    hub.add_user(person)
    hub_token, _ = hub.user_token(person)
    environment = {"SKAO_STAGING_URL": staging.url, "JUPYTERHUB_API_TOKEN": hub_token}
    with jupyter_server(tmp_path_factory.mktemp("jserver"), environment) as (url, token):
        yield url, token, person, hub_token


def test_the_extension_is_installed_and_enabled() -> None:
    labextensions = subprocess.run([BIN / "jupyter", "labextension", "list"], capture_output=True, text=True)
    listed = labextensions.stdout + labextensions.stderr
    assert "skao-staging-jupyterlab v0.1.0 \x1b[32menabled\x1b[0m \x1b[32mOK\x1b[0m" in listed, listed
    server = subprocess.run([BIN / "jupyter", "server", "extension", "list"], capture_output=True, text=True)
    shown = server.stdout + server.stderr
    assert "skao_staging_jupyterlab \x1b[32menabled\x1b[0m" in shown, shown
    assert "skao_staging_jupyterlab 0.1.0 \x1b[32mOK\x1b[0m" in shown, shown


def test_calls_are_forwarded_as_the_servers_user(forwarding: tuple[str, str, str, str], staging: LiveService) -> None:
    url, token, person, _ = forwarding
    headers = {"Authorization": f"token {token}"}
    me = httpx.get(f"{url}/skao-staging/api/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == person
    listing = httpx.get(f"{url}/skao-staging/api/storage", params={"path": "obs"}, headers=headers)
    assert [entry["name"] for entry in listing.json()["entries"]] == ["notes.txt"]
    missing = httpx.get(f"{url}/skao-staging/api/jobs/987654", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "job_not_found")


def test_a_change_needs_the_xsrf_token_of_a_signed_in_browser(
    forwarding: tuple[str, str, str, str], staging: LiveService
) -> None:
    url, token, person, _ = forwarding
    body = {"items": [{"method": "local_copy", "local_path_on_storage": "obs/notes.txt", "relative_path": "n.txt"}]}
    with httpx.Client(base_url=url) as browser:
        browser.get("/lab", params={"token": token})  # signs in: a login cookie and an _xsrf cookie
        assert browser.get("/skao-staging/api/me").json()["username"] == person
        refused = browser.post("/skao-staging/api/jobs", json=body)
        assert refused.status_code == 403, refused.text
        assert not (staging.users / person / "n.txt").exists()
        xsrf = browser.cookies["_xsrf"]
        accepted = browser.post("/skao-staging/api/jobs", json=body, headers={"X-XSRFToken": xsrf})
        assert accepted.status_code == 202, accepted.text
    assert httpx.get(f"{url}/skao-staging/api/me").status_code == 403  # nobody signed in to this server


def test_only_the_panels_calls_are_forwarded(forwarding: tuple[str, str, str, str]) -> None:
    url, token, _, _ = forwarding
    headers = {"Authorization": f"token {token}"}
    for method, path in [
        ("GET", "logs"),
        ("POST", "files"),
        ("POST", "jobs/1/attempts"),
        ("DELETE", "usage"),
        ("GET", "usage/users"),
    ]:
        answer = httpx.request(method, f"{url}/skao-staging/api/{path}", headers=headers)
        assert answer.status_code == 404 and answer.json()["code"] == "not_forwarded", (method, path, answer.text)


def test_no_token_reaches_the_browser(forwarding: tuple[str, str, str, str], staging: LiveService) -> None:
    url, token, _, hub_token = forwarding
    headers = {"Authorization": f"token {token}"}
    answers = [
        httpx.get(f"{url}/lab", headers=headers).text,
        *(httpx.get(f"{url}/skao-staging/api/{path}", headers=headers).text for path in ("config", "me", "jobs")),
    ]
    assert all(hub_token not in answer for answer in answers)
    assert hub_token not in staging.log_file.read_text()


def test_the_event_stream_passes_through(forwarding: tuple[str, str, str, str], staging: LiveService) -> None:
    url, token, person, _ = forwarding
    headers = {"Authorization": f"token {token}"}
    lines: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", f"{url}/skao-staging/api/events", headers=headers, timeout=20) as stream:
            for line in stream.iter_lines():
                lines.append(line)
                if '"status": "succeeded"' in line and '"relative_path": "sse.txt"' in line:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(1)  # subscribed before the job exists
    body = {"items": [{"method": "local_copy", "local_path_on_storage": "obs/notes.txt", "relative_path": "sse.txt"}]}
    accepted = httpx.post(f"{url}/skao-staging/api/jobs", json=body, headers=headers)
    assert accepted.status_code == 202
    listener.join(20)
    assert not listener.is_alive(), f"no end arrived through the stream: {lines}"
    assert any(line == "event: job" for line in lines)
    assert (staging.users / person / "sse.txt").read_bytes() == b"notes\n"


def test_an_unreachable_or_unconfigured_service_is_named(tmp_path: Path) -> None:
    with jupyter_server(tmp_path, {"SKAO_STAGING_URL": f"http://127.0.0.1:{free_port()}"}) as (url, token):
        answer = httpx.get(f"{url}/skao-staging/api/config", headers={"Authorization": f"token {token}"})
        assert (answer.status_code, answer.json()["code"]) == (502, "staging_unavailable")
    with jupyter_server(tmp_path, {}) as (url, token):
        answer = httpx.get(f"{url}/skao-staging/api/config", headers={"Authorization": f"token {token}"})
        assert (answer.status_code, answer.json()["code"]) == (503, "staging_not_configured")


def test_the_wheel_carries_the_built_panel(tmp_path: Path) -> None:
    """The distribution is prebuilt: its wheel holds the bundled panel and the server's config, so
    installing it into a single-user image runs no Node.js."""
    import zipfile

    extension = Path(__file__).resolve().parents[1] / "jupyterlab-extension"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(extension),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    names = zipfile.ZipFile(next(tmp_path.glob("skao_staging_jupyterlab-*.whl"))).namelist()
    data = "skao_staging_jupyterlab-0.1.0.data/data"
    assert f"{data}/share/jupyter/labextensions/skao-staging-jupyterlab/package.json" in names
    assert f"{data}/share/jupyter/labextensions/skao-staging-jupyterlab/install.json" in names
    assert any(
        name.startswith(f"{data}/share/jupyter/labextensions/skao-staging-jupyterlab/static/remoteEntry.")
        for name in names
    )
    assert f"{data}/etc/jupyter/jupyter_server_config.d/skao_staging_jupyterlab.json" in names
    assert "skao_staging_jupyterlab/handlers.py" in names
    assert not any("node_modules" in name or name.endswith(".ts") for name in names)
