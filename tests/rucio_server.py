"""A real Rucio server for the tests: SQLite, one gunicorn worker on loopback, ready in a few seconds.

The server runs from its own virtual environment (``scripts/test`` makes it: the server pins
libraries the service does not), found by ``RUCIO_SERVER_VENV``. The tests seed it with the
official client, as a site's data management would: an RSE whose ``file`` protocol points at a
folder of the test's storage, replicas with their adler32, datasets and containers.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rucio.client import Client

VENV = Path(os.environ.get("RUCIO_SERVER_VENV", Path.home() / ".cache" / "skao-staging" / "rucio-41.5.1"))
USERNAME, PASSWORD, ACCOUNT = "ddmlab", "secret", "root"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RucioServer:
    """``start()`` builds the schema and serves; ``stop()`` ends it."""

    workdir: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    workers: int = 1  # gunicorn worker processes (the benchmark serves as a deployment would, with several)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _configure(self) -> dict[str, str]:
        site_packages = next((VENV / "lib").glob("python3*/site-packages"))
        database = f"sqlite:///{self.workdir / 'rucio.db'}"
        (self.workdir / "log").mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        (self.workdir / "alembic.ini").write_text(
            textwrap.dedent(f"""\
                [alembic]
                script_location = {site_packages}/rucio/db/sqla/migrate_repo
                sqlalchemy.url = {database}
                [loggers]
                keys = root
                [handlers]
                keys = console
                [formatters]
                keys = generic
                [logger_root]
                level = WARN
                handlers = console
                [handler_console]
                class = StreamHandler
                args = (sys.stderr,)
                formatter = generic
                [formatter_generic]
                format = %(levelname)s %(message)s
                """)
        )
        (self.workdir / "rucio.cfg").write_text(
            textwrap.dedent(f"""\
                [common]
                logdir = {self.workdir / "log"}
                loglevel = WARNING
                [database]
                default = {database}
                [bootstrap]
                userpass_identity = {USERNAME}
                userpass_pwd = {PASSWORD}
                userpass_email = root@example.org
                [policy]
                permission = generic
                schema = generic
                lfn2pfn_algorithm_default = hash
                [alembic]
                cfg = {self.workdir / "alembic.ini"}
                [client]
                rucio_host = {self.url}
                auth_host = {self.url}
                auth_type = userpass
                username = {USERNAME}
                password = {PASSWORD}
                account = {ACCOUNT}
                """)
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RUCIO_", "STAGING_"))}
        env.update(RUCIO_CONFIG=str(self.workdir / "rucio.cfg"), TMPDIR=str(self.workdir / "tmp"))
        return env

    def start(self, timeout: float = 60) -> None:
        """Build the schema (first start only) and serve until ``stop``; a later start resumes the catalogue."""
        env = self._configure()
        bootstrap = (
            "from rucio.db.sqla.util import build_database, create_base_vo, create_root_account; "
            "build_database(); create_base_vo(); create_root_account()"
        )
        if not (self.workdir / "rucio.db").exists():  # a restart keeps the catalogue
            subprocess.run([str(VENV / "bin" / "python"), "-c", bootstrap], env=env, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [str(VENV / "bin" / "gunicorn"), "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers), "--threads", "1",
             "--no-control-socket", "rucio.web.rest.flaskapi.v1.main:application"],
            env=env,
            stdout=(self.workdir / "log" / "gunicorn.out").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Rucio server exited: see {self.workdir / 'log' / 'gunicorn.out'}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the Rucio server did not answer /ping")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self) -> Client:
        return Client(
            rucio_host=self.url,
            auth_host=self.url,
            account=ACCOUNT,
            auth_type="userpass",
            creds={"username": USERNAME, "password": PASSWORD},
        )


@dataclass
class Site:
    """One RSE of the catalogue: its ``file`` protocol names paths below ``prefix`` (as the site's
    storage system does), which are mounted at ``mount`` on this machine (inside a storage root)."""

    client: Client
    rse: str
    prefix: str  # the RSE's path prefix in its PFNs, e.g. /srcnet/site
    mount: Path

    @property
    def pfn_prefix(self) -> str:
        return f"file://localhost{self.prefix}/"

    @classmethod
    def create(cls, client: Client, rse: str, prefix: str, mount: Path) -> Site:
        mount.mkdir(parents=True, exist_ok=True)
        client.add_rse(rse)
        domains = {kind: {"read": 1, "write": 1, "delete": 1} for kind in ("lan", "wan")}
        client.add_protocol(
            rse,
            {"scheme": "file", "hostname": "localhost", "port": 0, "prefix": f"{prefix}/",
             "impl": "rucio.rse.protocols.posix.Default", "domains": domains},
        )  # fmt: skip
        client.set_local_account_limit(ACCOUNT, rse, -1)
        return cls(client, rse, prefix, mount)

    def add_file(self, scope: str, name: str, data: bytes) -> Path:
        """Write a file where the RSE keeps it (through the mount) and register its replica there."""
        path = self._write(scope, name, data)
        adler = f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
        self.client.add_replicas(self.rse, [{"scope": scope, "name": name, "bytes": len(data), "adler32": adler}])
        return path

    def arrive(self, scope: str, name: str, data: bytes) -> Path:
        """Play the transfer service for a rule to this RSE: write the file where the RSE keeps it and
        mark its replica available, as FTS and Rucio's conveyor would."""
        path = self._write(scope, name, data)
        self.client.update_replicas_states(self.rse, [{"scope": scope, "name": name, "state": "A"}])
        return path

    def _write(self, scope: str, name: str, data: bytes) -> Path:
        """The file of a DID, read-only, at the path the RSE's deterministic layout gives it, through the mount."""
        did = f"{scope}:{name}"
        pfn = self.client.lfns2pfns(self.rse, [did], operation="write", scheme="file")[did]
        path = self.mount / pfn.removeprefix(self.pfn_prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)
        return path
