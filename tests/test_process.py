"""The real command: ``skao-staging serve`` on its defaults, a kill -9 mid-copy, and the CLI client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster import wait_ready
from conftest import free_port, leftovers

BIN = Path(sys.executable).with_name("skao-staging")


class Served:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env, self.port = workdir, env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.url, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    server = Served(tmp_path, env)
    try:
        yield server
    finally:
        server.stop()


def test_serve_on_embedded_defaults(served: Served) -> None:
    served.start()
    assert (served.workdir / "var" / "storage" / "demo" / "hello.txt").is_file()
    assert (served.workdir / "var" / "staging.db").is_file()
    response = httpx.post(
        f"{served.url}/stage_data",
        params={"method": "local_copy", "username": "alice"},
        json={"local_path_on_storage": "demo/observation.ms", "relative_path": "obs.ms"},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert (served.workdir / "var" / "users" / "alice" / "obs.ms" / "ANTENNA" / "table.dat").is_file()
    assert "job 1 succeeded" in (served.workdir / "staging_service.log").read_text()

    cli = subprocess.run(
        [str(BIN), "stage", "local_copy", "bob", "demo/visibilities.bin", "v.bin", "--url", served.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr + cli.stdout
    assert "succeeded" in cli.stdout
    assert (served.workdir / "var" / "users" / "bob" / "v.bin").stat().st_size == 4 * 1024 * 1024
    refused = subprocess.run(
        [str(BIN), "stage", "local_copy", "bob", "demo/none", "n", "--url", served.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "source_not_found" in refused.stdout
    table = subprocess.run(
        [str(BIN), "jobs", "--username", "bob", "--url", served.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**served.env, "COLUMNS": "250"},
    )
    assert table.returncode == 0 and "source_not_found" in table.stdout and "succeeded" in table.stdout


def test_kill_during_a_copy_leaves_nothing_half_written(served: Served, tmp_path: Path) -> None:
    storage, users = tmp_path / "storage", tmp_path / "users"
    storage.mkdir()
    data = os.urandom(24 * 1024 * 1024)
    (storage / "big.bin").write_bytes(data)
    served.env.update(
        STAGING_STORAGE_ROOTS=str(storage),
        STAGING_USER_AREAS=str(users / "{username}"),
        STAGING_MAX_BYTES_PER_SECOND=str(8 * 1024 * 1024),  # a 3-second copy we can interrupt
        STAGING_LEASE_SECONDS="2",
    )
    served.start()
    item = {"method": "local_copy", "local_path_on_storage": "big.bin", "relative_path": "big.bin"}
    job_id = httpx.post(f"{served.url}/api/v1/jobs", json={"username": "carol", "items": [item]}).json()["items"][0][
        "job"
    ]["job_id"]
    deadline = time.monotonic() + 20
    while not leftovers(users) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    served.kill()
    assert leftovers(users), "the copy was under way in its temporary file"
    assert not (users / "carol" / "big.bin").exists(), "nothing half-written is visible"

    served.env["STAGING_MAX_BYTES_PER_SECOND"] = "0"
    served.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = httpx.get(f"{served.url}/api/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert (users / "carol" / "big.bin").read_bytes() == data
    assert leftovers(users) == []


def test_migrate_command_and_unmigrated_database(tmp_path: Path) -> None:
    import pymysql

    from conftest import MARIADB

    name = f"skao_test_{os.urandom(5).hex()}"
    connection = pymysql.connect(**MARIADB, connect_timeout=5)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    env["STAGING_DATABASE_URL"] = f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    env["STAGING_LOG_FILE"] = str(tmp_path / "log")
    waiting: subprocess.Popen[bytes] | None = None
    try:
        refused = subprocess.run(
            [str(BIN), "serve", "--port", str(free_port())],
            env={**env, "STAGING_STARTUP_WAIT_SECONDS": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode != 0
        assert "run 'skao-staging migrate'" in refused.stderr
        # an API started before the migration waits for it (as a pod beside a migration job does)
        port = free_port()
        waiting = subprocess.Popen(
            [str(BIN), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.5)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        migrated = subprocess.run([str(BIN), "migrate"], env=env, capture_output=True, text=True, timeout=60)
        assert migrated.returncode == 0, migrated.stderr
        assert "revision 0004" in migrated.stdout
        wait_ready(f"http://127.0.0.1:{port}", waiting, timeout=30)
        with connection.cursor() as cursor:
            cursor.execute(f"SHOW COLUMNS FROM {name}.staging_jobs")
            columns = {row[0] for row in cursor.fetchall()}
        assert {"id", "local_path_on_storage", "relative_path", "status", "error_reason", "note"} <= columns
    finally:
        if waiting is not None:
            waiting.terminate()
            waiting.wait(30)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name}")
        connection.close()


@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_the_log_is_reopened_after_an_external_rotation(served: Served, how: str) -> None:
    """An external rotation moves or deletes the log: the next line goes to a new file, and the Logs API shows it."""
    served.start()
    log_file = served.workdir / "staging_service.log"
    if how == "moved":
        log_file.rename(served.workdir / "staging_service.log.old")
    else:
        log_file.unlink()
    response = httpx.post(
        f"{served.url}/stage_data",
        params={"method": "local_copy", "username": "after-rotation"},
        json={"local_path_on_storage": "demo/hello.txt", "relative_path": "hello.txt"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert log_file.is_file(), "the service must re-create its log file"
    assert "user=after-rotation" in log_file.read_text()
    lines = httpx.get(f"{served.url}/api/v1/logs", params={"search": "after-rotation"}, timeout=10).json()["lines"]
    assert lines, "the Logs view must show what was written after the rotation"
