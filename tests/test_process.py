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

import skao_staging
from cluster import drop_database, fresh_database, query, wait_ready
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


def newest_migration() -> str:
    versions = Path(skao_staging.__file__).parent / "db" / "migrations" / "versions"
    return max(path.name.split("_", 1)[0] for path in versions.glob("0*.py"))


@pytest.fixture
def empty_mariadb(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """An empty database on the local MariaDB and the environment of a service using it."""
    name, url = fresh_database()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    env.update(STAGING_DATABASE_URL=url, STAGING_LOG_FILE=str(tmp_path / "log"))
    try:
        yield name, env
    finally:
        drop_database(name)


def start_serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_answering(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited: {process.stdout.read() if process.stdout else ''}"
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("serve does not listen")


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    output, _ = process.communicate(timeout=30)
    return output


def test_serve_listens_unready_until_the_schema_is_migrated(empty_mariadb: tuple[str, dict[str, str]]) -> None:
    """As a pod started beside its migration job: alive (200) and unready (503 with the reason) until
    ``skao-staging migrate`` has run, then ready without a restart."""
    name, env = empty_mariadb
    process, url = start_serve({**env, "STAGING_STARTUP_WAIT_SECONDS": "1"})
    try:
        wait_answering(url, process)
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "schema_not_current", ready.text
        assert "skao-staging migrate" in ready.json()["detail"]
        staged = httpx.post(
            f"{url}/stage_data",
            params={"method": "local_copy", "username": "una"},
            json={"local_path_on_storage": "a", "relative_path": "b"},
        )
        assert staged.status_code == 503 and staged.json()["code"] == "schema_not_current", staged.text
        time.sleep(2)  # past STAGING_STARTUP_WAIT_SECONDS: serve keeps waiting, it does not exit
        assert process.poll() is None

        migrated = subprocess.run([str(BIN), "migrate"], env=env, capture_output=True, text=True, timeout=60)
        assert migrated.returncode == 0, migrated.stderr
        assert f"revision {newest_migration()}" in migrated.stdout
        wait_ready(url, None, timeout=30)
        columns = {row[0] for row in query(name, "SHOW COLUMNS FROM staging_jobs")}
        assert {"id", "local_path_on_storage", "relative_path", "status", "error_reason", "note"} <= columns
    finally:
        output = stop(process)
    assert f"skao-staging listening on {url} (web UI /, API docs /docs)" in output
    assert "run 'skao-staging migrate'" in output and "Traceback" not in output, output


def test_serve_migrate_applies_the_migrations_itself(empty_mariadb: tuple[str, dict[str, str]]) -> None:
    name, env = empty_mariadb
    process, url = start_serve(env, "--migrate")
    try:
        wait_ready(url, None, timeout=60)
        assert query(name, "SELECT version_num FROM alembic_version") == [(newest_migration(),)]
    finally:
        stop(process)


def test_serve_listens_while_the_database_does_not_answer(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    env.update(
        STAGING_DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing",
        STAGING_LOG_FILE=str(tmp_path / "l"),
    )
    process, url = start_serve(env)
    try:
        wait_answering(url, process)
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "database_unavailable", ready.text
        jobs = httpx.get(f"{url}/api/v1/jobs")
        assert jobs.status_code == 503 and jobs.json()["code"] == "database_unavailable", jobs.text
    finally:
        output = stop(process)
    assert "Traceback" not in output, output


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
