"""A real JupyterHub on loopback for the tests: dummy authenticator, real single-user servers.

Configured as verified in shared/TOOLING.md. One user, ``broken``, always fails to spawn (its
server command exits at once), and the single-user servers refuse the third chunk of any upload
whose path contains ``explode`` (a contents manager subclass), so tests can break an upload midway.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE_SCOPES = ["read:users", "read:servers", "servers", "access:servers", "admin:users"]
LIMITED_SCOPES = ["read:users", "read:servers", "access:servers"]  # cannot start servers
# The tests' own hub client: makes users' tokens and groups (never given to the staging service).
TESTER_SCOPES = ["admin:users", "admin:groups", "tokens", "admin:servers", "admin:server_state", "read:users"]
# As docs/operators/jupyterlab.md asks: users and their servers' tokens may be used at the staging service.
USER_SCOPES = ["self", "access:services!service=staging"]
ADMIN_USER = "hubadmin"  # a hub admin (admins are only made by configuration or by other admins)
SERVER_SCOPES = ["users:activity!user", "access:servers!server", "access:services!service=staging"]

HOOKS = '''
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web


class ExplodingContentsManager(AsyncLargeFileManager):
    """Refuses the third chunk of any upload whose path contains 'explode'."""

    async def save(self, model, path=""):
        if "explode" in path and model.get("chunk") == 3:
            raise web.HTTPError(507, "refusing this chunk on purpose")
        return await super().save(model, path)
'''

CONFIG = """
c = get_config()  # noqa
import sys
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{{admin!r}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = [
    "--allow-root",
    "--ServerApp.contents_manager_class=staging_test_hooks.ExplodingContentsManager",
    "--ServerApp.max_body_size=4294967296",
    "--FileContentsManager.delete_to_trash=False",  # as docs/operators recommends: a release frees the space
]
c.Spawner.environment = {{"PYTHONPATH": {workdir!r}, **{environment!r}}}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 30  # JupyterLab servers take several seconds to answer on a busy machine
c.JupyterHub.db_url = "sqlite:///" + {workdir!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {workdir!r} + "/cookie_secret"
c.JupyterHub.pid_file = {workdir!r} + "/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = {workdir!r} + "/proxy.pid"
c.JupyterHub.cleanup_servers = True

def fail_for_broken(spawner):
    import os
    os.makedirs(spawner.home_dir, exist_ok=True)
    if spawner.user.name == "broken":  # its server command exits at once
        spawner.cmd = [sys.executable, "-c", "import sys; sys.exit('no resources left for user broken')"]
c.Spawner.pre_spawn_hook = fail_for_broken

c.JupyterHub.services = [
    {{"name": "staging", "api_token": {token!r}}},
    {{"name": "staging-limited", "api_token": {limited_token!r}}},
    {{"name": "tester", "api_token": {tester_token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "staging", "scopes": {scopes!r}, "services": ["staging"]}},
    {{"name": "staging-limited", "scopes": {limited_scopes!r}, "services": ["staging-limited"]}},
    {{"name": "tester", "scopes": {tester_scopes!r}, "services": ["tester"]}},
    {{"name": "user", "scopes": {user_scopes!r}}},
    {{"name": "server", "scopes": {server_scopes!r}}},
]
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hub:
    """Starts ``jupyterhub`` in ``workdir``; ``stop()`` ends it and every server it spawned."""

    def __init__(self, workdir: Path, environment: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.environment = environment or {}  # given to every single-user server
        self.homes = workdir / "homes"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        self.limited_token = secrets.token_hex(32)
        self.tester_token = secrets.token_hex(32)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        if not PROXY.exists():
            raise RuntimeError(f"configurable-http-proxy is missing: run npm ci in {HERE}")
        self.homes.mkdir(parents=True, exist_ok=True)
        (self.workdir / "staging_test_hooks.py").write_text(textwrap.dedent(HOOKS))
        bin_dir = Path(sys.executable).parent
        config = CONFIG.format(
            port=self.port,
            hub_port=_free_port(),
            proxy_api_port=_free_port(),
            proxy=str(PROXY),
            homes=str(self.homes),
            singleuser=str(bin_dir / "jupyterhub-singleuser"),
            workdir=str(self.workdir),
            token=self.token,
            limited_token=self.limited_token,
            scopes=SERVICE_SCOPES,
            limited_scopes=LIMITED_SCOPES,
            admin=ADMIN_USER,
            environment=self.environment,
            tester_token=self.tester_token,
            tester_scopes=TESTER_SCOPES,
            user_scopes=USER_SCOPES,
            server_scopes=SERVER_SCOPES,
        )
        (self.workdir / "jupyterhub_config.py").write_text(config)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        self.log = open(self.workdir / "jupyterhub.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(bin_dir / "jupyterhub"), "-f", str(self.workdir / "jupyterhub_config.py")],
            cwd=self.workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited: {self.log_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/hub/api/", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyterhub did not answer in {timeout}s: {self.log_text()[-3000:]}")

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def as_tester(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """A hub API call as the tests' own administrative service."""
        headers = {"Authorization": f"token {self.tester_token}"}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def add_user(self, name: str) -> None:
        response = self.as_tester("POST", f"/users/{name}")
        assert response.status_code in (201, 409), response.text

    def user_token(self, name: str, scopes: list[str] | None = None) -> tuple[str, str]:
        """A new API token of ``name`` (its value and id); ``scopes`` default to the user's own."""
        body = {"note": "test", **({"scopes": scopes} if scopes is not None else {})}
        response = self.as_tester("POST", f"/users/{name}/tokens", json=body)
        assert response.status_code == 201, response.text
        return response.json()["token"], response.json()["id"]

    def revoke_token(self, name: str, token_id: str) -> None:
        response = self.as_tester("DELETE", f"/users/{name}/tokens/{token_id}")
        assert response.status_code == 204, response.text

    def start_server(self, name: str, timeout: float = 30) -> dict[str, object]:
        """Start the user's default server and wait until it is ready; its model (with the spawner's state)."""
        self.as_tester("POST", f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server: dict[str, object] = self.as_tester("GET", f"/users/{name}").json()["servers"].get("", {})
            if server.get("ready"):
                return server
            time.sleep(0.2)
        raise RuntimeError(f"the server of {name} did not start")

    def server_token(self, name: str) -> str:
        """The token the hub gave the user's running server (JUPYTERHUB_API_TOKEN), read from its environment."""
        state = self.start_server(name)["state"]
        assert isinstance(state, dict)
        environ = Path(f"/proc/{state['pid']}/environ").read_bytes().split(b"\0")
        values = dict(item.decode().partition("=")[::2] for item in environ if b"=" in item)
        return values["JUPYTERHUB_API_TOKEN"]

    def add_group(self, group: str, users: list[str]) -> None:
        response = self.as_tester("POST", f"/groups/{group}", json={"users": users})
        assert response.status_code in (201, 409), response.text

    def stop_server(self, name: str, timeout: float = 30) -> None:
        self.api("DELETE", f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"/users/{name}").json().get("servers", {}).get("")
            if not server:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server of {name} did not stop")

    def home(self, name: str) -> Path:
        return self.homes / name

    def log_text(self) -> str:
        return (self.workdir / "jupyterhub.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()
        self.process = None


def install_proxy() -> None:
    """npm ci the proxy next to this file (scripts/test does this too)."""
    if not PROXY.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


if __name__ == "__main__":  # manual check: python tests/hub/harness.py
    install_proxy()
    hub = Hub(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/skao-hub"))
    shutil.rmtree(hub.workdir, ignore_errors=True)
    hub.workdir.mkdir(parents=True)
    hub.start()
    print("hub at", hub.url, "token", hub.token)
    hub.add_user("alice")
    started = time.monotonic()
    print(hub.api("POST", "/users/alice/server").status_code)
    while not hub.api("GET", "/users/alice").json()["servers"].get("", {}).get("ready"):
        time.sleep(0.2)
    print("ready after", round(time.monotonic() - started, 1), "s")
    hub.stop()
