"""Shared fixtures: a real service on loopback (uvicorn in a thread) over SQLite and over MariaDB."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pymysql
import pytest
import uvicorn

from cluster import (
    Cluster,
    ThrowawayMariaDB,
    create_postgresql_database,
    drop_database,
    drop_postgresql_database,
    free_port,
    fresh_database,
)
from hub.harness import Hub
from oidc_issuer import Issuer
from skao_staging.api.app import create_app
from skao_staging.config import Settings
from skao_staging.db import Database, upgrade

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@dataclass
class LiveService:
    url: str
    settings: Settings
    storage: Path
    users: Path
    outside: Path
    log_file: Path
    database_url: str

    def user_area(self, username: str) -> Path:
        return self.users / username

    def stage(self, method: str, username: str, source: str, relative: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(
            f"{self.url}/stage_data",
            params={"method": method, "username": username},
            json={"local_path_on_storage": source, "relative_path": relative},
            timeout=60,
            **kwargs,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kwargs)

    def write_source(self, name: str, data: bytes, mode: int = 0o444) -> Path:
        path = self.storage / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        return path

    def job_row(self, job_id: int) -> dict[str, Any]:
        """The job as stored, read straight from the database (not through the API)."""
        from sqlalchemy import text

        db = Database(self.database_url)
        try:
            with db.engine.connect() as connection:
                row = connection.execute(text("SELECT * FROM staging_jobs WHERE id = :id"), {"id": job_id})
                return dict(row.mappings().one())
        finally:
            db.dispose()


class ThreadedServer:
    """uvicorn serving an app in a thread of the test process, on a real loopback socket."""

    def __init__(self, app: Any, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        """Start serving and wait until the service is ready (it answers /healthz before)."""
        self.thread.start()
        deadline = time.monotonic() + 30
        while not (self.server.started and httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not become ready")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A fresh database on the local MariaDB for this run, dropped afterwards."""
    name = f"skao_test_{uuid.uuid4().hex[:10]}"
    try:
        connection = pymysql.connect(**MARIADB, connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable on 127.0.0.1:3306 ({exc}); .ci/run starts it")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.close()


def make_settings(base: Path, database_url: str, **overrides: Any) -> Settings:
    storage, users = base / "storage", base / "users"
    storage.mkdir(parents=True, exist_ok=True)
    users.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "database_url": database_url,
        "storage_roots": [storage],
        "user_areas": str(users / "{username}"),
        "log_file": base / "staging_service.log",
        "log_level": "DEBUG",
        "lease_seconds": 5.0,
        "poll_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


def live_service(base: Path, **overrides: Any) -> tuple[ThreadedServer, LiveService]:
    """A service with its own settings on SQLite in ``base``; enter the server to run it."""
    settings = make_settings(base, f"sqlite:///{base / 'staging.db'}", **overrides)
    port = free_port()
    service = LiveService(
        url=f"http://127.0.0.1:{port}",
        settings=settings,
        storage=base / "storage",
        users=base / "users",
        outside=base,
        log_file=Path(settings.log_file),
        database_url=settings.database_url,
    )
    return ThreadedServer(create_app(settings), port), service


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL for this run, dropped afterwards."""
    name = f"skao_test_{uuid.uuid4().hex[:10]}"
    try:
        create_postgresql_database(name)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc}); .ci/run starts it")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_postgresql_database(name)


@pytest.fixture(scope="session", params=["sqlite", "mariadb", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """One running service per database backend, shared by the tests (each uses its own user)."""
    base = tmp_path_factory.mktemp(f"service-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'staging.db'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
        db = Database(url)
        upgrade(db)
        db.dispose()
    settings = make_settings(base, url)
    outside = base / "outside"
    outside.mkdir()
    port = free_port()
    with ThreadedServer(create_app(settings), port):
        yield LiveService(
            url=f"http://127.0.0.1:{port}",
            settings=settings,
            storage=base / "storage",
            users=base / "users",
            outside=outside,
            log_file=Path(settings.log_file),
            database_url=url,
        )


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A local OIDC issuer (tests/oidc_issuer.py) with keys made at test time, one per test module."""
    issuer = Issuer()
    issuer.thread.start()
    try:
        yield issuer
    finally:
        issuer.server.shutdown()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A real JupyterHub with real single-user servers (tests/hub/harness.py), one per test module."""
    hub = Hub(tmp_path_factory.mktemp("hub"))
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def hub_user(hub: Hub) -> str:
    """A new user of the module's hub (no server started)."""
    name = f"h{uuid.uuid4().hex[:8]}"
    hub.add_user(name)
    return name


@pytest.fixture
def user() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


@pytest.fixture
def name() -> str:
    """A unique name for this test's sources."""
    return f"t{uuid.uuid4().hex[:10]}"


def tree_files(top: Path) -> dict[str, bytes]:
    return {str(path.relative_to(top)): path.read_bytes() for path in sorted(top.rglob("*")) if path.is_file()}


def leftovers(top: Path) -> list[str]:
    """Temporary names left anywhere below ``top``."""
    return [str(path) for path in top.rglob(".skao-staging-*")]


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A fresh MariaDB database (name, URL) on the local server, dropped afterwards."""
    name, url = fresh_database()
    try:
        yield name, url
    finally:
        drop_database(name)


@pytest.fixture
def cluster_factory(tmp_path: Path, database: tuple[str, str]) -> Iterator[Callable[..., Cluster]]:
    """Makes migrated clusters of real API and worker processes on ``database``; stops them afterwards."""
    clusters: list[Cluster] = []

    def make(**settings: object) -> Cluster:
        cluster = Cluster(tmp_path, database[1], **settings)
        cluster.migrate()
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.stop()


@dataclass
class PrivateDatabase:
    """A database on a private MariaDB server that a test may stop and start (a database outage)."""

    server: ThrowawayMariaDB
    name: str
    url: str


@pytest.fixture
def private_database(tmp_path: Path) -> Iterator[PrivateDatabase]:
    server = ThrowawayMariaDB(tmp_path / "mariadb")
    (tmp_path / "mariadb").mkdir()
    server.install()
    server.start()
    try:
        name, url = fresh_database(port=server.port)
        yield PrivateDatabase(server, name, url)
    finally:
        server.stop()


# The JupyterLab extension's server part answers these itself (jupyterlab-extension/.../handlers.py).
PANEL_SERVER_CODES = {"not_forwarded", "staging_unavailable", "staging_not_configured"}


@pytest.fixture(scope="session", autouse=True)
def every_error_code_is_in_the_catalogue() -> Iterator[None]:
    """Over the whole run: every error answer the tests receive carries a code from ``errors.CODES``."""
    from skao_staging.errors import CODES

    seen: dict[str, str] = {}
    original = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = original(self, request, **kwargs)
        json_answer = response.headers.get("content-type", "").startswith("application/json")
        if response.is_closed and response.status_code >= 400 and json_answer:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and {"detail", "code"} <= set(body):
                seen.setdefault(str(body["code"]), f"{request.method} {request.url.path}")
        return response

    httpx.Client.send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.Client.send = original  # type: ignore[method-assign]
    unknown = {code: where for code, where in seen.items() if code not in CODES.keys() | PANEL_SERVER_CODES}
    assert not unknown, f"answers with codes outside the catalogue: {unknown}"
