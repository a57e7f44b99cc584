"""Real processes for the scale tests: API replicas and worker processes of ``skao-staging``
sharing one MariaDB database, and a throwaway MariaDB server that a test may restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pymysql

BIN = Path(sys.executable).with_name("skao-staging")
FINAL = ("succeeded", "skipped", "failed", "cancelled")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    """Wait until a skao-staging API answers /readyz (and its process has not died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the service at {url} did not become ready")


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.popen = subprocess.Popen([str(BIN), *args], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(40)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.log.close()


class Cluster:
    """Storage, user areas and a database shared by any number of API and worker processes."""

    def __init__(self, base: Path, database_url: str, **settings: Any) -> None:
        self.base = base
        self.storage, self.users = base / "storage", base / "users"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.users.mkdir(parents=True, exist_ok=True)
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
        self.env.update(
            STAGING_DATABASE_URL=database_url,
            STAGING_STORAGE_ROOTS=str(self.storage),
            STAGING_USER_AREAS=str(self.users / "{username}"),
            STAGING_LOG_FILE=str(base / "staging_service.log"),
            STAGING_LEASE_SECONDS="2",
            STAGING_POLL_SECONDS="0.1",
            STAGING_RETRY_BACKOFF_SECONDS="0.2",
            STAGING_SHUTDOWN_GRACE_SECONDS="1",
        )
        self.env.update({f"STAGING_{key.upper()}": str(value) for key, value in settings.items()})
        self.processes: list[Process] = []
        self.apis: list[str] = []
        self.workers: list[Process] = []

    def migrate(self) -> None:
        subprocess.run([str(BIN), "migrate"], env=self.env, check=True, capture_output=True, timeout=120)

    def start_api(self, embedded_worker: bool = False) -> str:
        port = free_port()
        env = {**self.env, "STAGING_EMBEDDED_WORKER": str(embedded_worker).lower()}
        self.processes.append(Process(["serve", "--port", str(port)], env, self.base / f"api-{port}.out"))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, self.processes[-1].popen)
        self.apis.append(url)
        return url

    def start_worker(self, concurrency: int = 4) -> Process:
        name = f"worker-{len(self.workers)}"
        process = Process(["worker", "--concurrency", str(concurrency)], self.env, self.base / f"{name}.out")
        self.processes.append(process)
        self.workers.append(process)
        return process

    def source(self, name: str, data: bytes) -> None:
        path = self.storage / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def submit(self, api: str, username: str, items: list[dict[str, str]], key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        response = httpx.post(
            f"{api}/api/v1/jobs", json={"username": username, "items": items}, headers=headers, timeout=60
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def job(self, job_id: int, api: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{api or self.apis[0]}/api/v1/jobs/{job_id}", timeout=30).json()
        return body

    def wait_for(self, job_id: int, statuses: tuple[str, ...], timeout: float = 60, **where: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                job = self.job(job_id)
            except httpx.TransportError:
                job = {}
            if job.get("status") in statuses and all(check(job) for check in where.values()):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")

    def wait_request(self, request_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state: dict[str, Any] = httpx.get(f"{self.apis[0]}/api/v1/requests/{request_id}", timeout=30).json()
                if state["state"] != "active":
                    return state
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"request {request_id} still active")

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def fresh_database(host: str = "127.0.0.1", port: int = 3306) -> tuple[str, str]:
    name = f"skao_test_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=5)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    connection.close()
    return name, f"mysql+pymysql://root@{host}:{port}/{name}"


def drop_database(name: str, host: str = "127.0.0.1", port: int = 3306) -> None:
    connection = pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=5)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    connection.close()


def create_postgresql_database(name: str) -> None:
    """A new database on the local PostgreSQL (trust authentication, user postgres)."""
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_postgresql_database(name: str) -> None:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(database_url_name: str, sql: str, port: int = 3306) -> list[tuple[Any, ...]]:
    connection = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database=database_url_name)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


class ThrowawayMariaDB:
    """A private mariadbd on a free port, with its own data folder, that a test may restart."""

    def __init__(self, base: Path) -> None:
        self.base, self.port = base, free_port()
        self.datadir = base / "data"
        self.process: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.process = subprocess.Popen(
            [
                binary,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--user=root",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                f"--socket={self.base / 'mysqld.sock'}",
                f"--pid-file={self.base / 'mysqld.pid'}",
                f"--log-error={self.base / 'mysqld.err'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("the throwaway MariaDB did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        self.process = None
