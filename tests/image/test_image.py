"""The container image, started as the chart starts it: ``migrate``, then ``serve`` without an embedded
worker and two ``worker`` containers, as uid 10001 with a read-only root filesystem, every capability
dropped and no privilege escalation, the archive mounted read-only and the user areas on a volume.

Run by ``scripts/image`` (it builds the image with podman and sets ``SKAO_IMAGE``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster import FINAL, drop_database, free_port, fresh_database
from conftest import tree_files

IMAGE = os.environ.get("SKAO_IMAGE", "")
pytestmark = pytest.mark.skipif(not IMAGE, reason="scripts/image builds the image and runs these checks")
MIB = 1024 * 1024
UID = 10001
# The chart's securityContext and podSecurityContext, as podman options.
AS_THE_CHART = [
    f"--user={UID}:{UID}",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--network=host",
    # the chart's emptyDir volumes, writable by the pod's user (fsGroup)
    "--mount=type=tmpfs,destination=/tmp,chown=true",
    "--mount=type=tmpfs,destination=/var/log/skao-staging,chown=true",
]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result


@dataclass
class Deployment:
    base: Path
    database_url: str
    port: int = field(default_factory=free_port)
    names: list[str] = field(default_factory=list)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def archive(self) -> Path:
        return self.base / "archive"

    @property
    def shared(self) -> Path:
        return self.base / "shared"

    def env(self, **extra: str) -> list[str]:
        values = {
            "STAGING_DATABASE_URL": self.database_url,
            # the read-only archive, and an archive on the user-area volume where hard links are possible
            "STAGING_STORAGE_ROOTS": "/data/archive,/data/shared/archive",
            "STAGING_USER_AREAS": "/data/shared/users/{username}",
            "STAGING_LEASE_SECONDS": "3",
            "STAGING_POLL_SECONDS": "0.2",
            "STAGING_SHUTDOWN_GRACE_SECONDS": "1",
            **extra,
        }
        return [f"--env={key}={value}" for key, value in values.items()]

    def volumes(self) -> list[str]:
        return [f"--volume={self.archive}:/data/archive:ro", f"--volume={self.shared}:/data/shared"]

    def run(self, name: str, *args: str, **env: str) -> str:
        container = f"skao-{name}-{self.suffix}"
        podman("run", "--detach", f"--name={container}", f"--hostname={container}", *AS_THE_CHART,
               *self.volumes(), *self.env(**env), IMAGE, *args)  # fmt: skip
        self.names.append(container)
        return container

    def stop(self) -> None:
        for container in self.names:
            podman("rm", "--force", "--time=5", container, check=False)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("image")
    name, url = fresh_database()
    deployment = Deployment(base, url)
    deployment.archive.mkdir()
    (deployment.shared / "archive").mkdir(parents=True)
    (deployment.shared / "users").mkdir()
    os.chown(deployment.shared / "users", UID, UID)  # the user-area volume belongs to the pod's user
    try:
        migrate = podman("run", "--rm", *AS_THE_CHART, *deployment.env(), IMAGE, "migrate", timeout=300)
        assert "database schema at revision" in migrate.stdout, migrate.stdout + migrate.stderr
        api = deployment.run("api", "serve", "--host=127.0.0.1", f"--port={deployment.port}",
                             STAGING_EMBEDDED_WORKER="false", STAGING_HEALTH_PORT=str(deployment.port))  # fmt: skip
        for worker in ("worker-a", "worker-b"):
            deployment.run(worker, "worker", "--concurrency=2", STAGING_MAX_BYTES_PER_SECOND=str(8 * MIB))
        wait_ready(deployment, api)
        yield deployment
    finally:
        deployment.stop()
        drop_database(name)


def wait_ready(deployment: Deployment, container: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{deployment.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    logs = podman("logs", container, check=False)
    raise AssertionError(f"the API container did not become ready: {logs.stdout}{logs.stderr}")


def write(path: Path, data: bytes, owner: int | None = None) -> None:
    """A read-only archive file (folders are made 0755 under umask 022).

    Files to hard-link belong to the pods' user: with the kernel's ``fs.protected_hardlinks`` (on by
    default) a process may link only files it owns (docs/operators/install.md, "Storage").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    if owner is not None:
        os.chown(path, owner, owner)


def stage(deployment: Deployment, method: str, user: str, source: str, relative: str) -> httpx.Response:
    return httpx.post(
        f"{deployment.url}/stage_data",
        params={"method": method, "username": user},
        json={"local_path_on_storage": source, "relative_path": relative},
        timeout=120,
    )


def job(deployment: Deployment, job_id: int) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{deployment.url}/api/v1/jobs/{job_id}", timeout=30).json()
    return body


def wait_for(deployment: Deployment, job_id: int, timeout: float = 120, **checks: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job(deployment, job_id)
        if all(check(current) for check in checks.values()):
            return current
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never met {list(checks)}: {current}")


def test_the_api_serves_the_web_ui_metrics_and_a_healthy_healthcheck(deployment: Deployment) -> None:
    page = httpx.get(f"{deployment.url}/", timeout=30)
    assert page.status_code == 200 and '<div id="root">' in page.text
    assert httpx.get(f"{deployment.url}/readyz", timeout=30).status_code == 200
    metrics = httpx.get(f"{deployment.url}/metrics", timeout=30)
    assert metrics.status_code == 200 and "skao_staging_" in metrics.text
    api = next(name for name in deployment.names if "-api-" in name)
    health = podman("healthcheck", "run", api, check=False)
    assert health.returncode == 0, f"HEALTHCHECK: {health.stdout}{health.stderr}"
    user = podman("exec", api, "id", "-u").stdout.strip()
    assert user == str(UID)


def test_files_and_folders_are_staged_by_the_workers(deployment: Deployment) -> None:
    data, tree = os.urandom(3 * MIB), {"a.bin": os.urandom(1000), "sub/b.bin": os.urandom(2000)}
    write(deployment.archive / "obs" / "vis.bin", data)
    write(deployment.shared / "archive" / "obs" / "vis.bin", data, owner=UID)
    for relative, content in tree.items():
        write(deployment.archive / "obs" / "ms" / relative, content)
        write(deployment.shared / "archive" / "obs" / "ms" / relative, content, owner=UID)

    seed = stage(deployment, "local_copy", "ann", "/data/archive/obs/vis.bin", "vis.bin")
    assert seed.status_code == 200 and seed.json()["status"] == "succeeded", seed.text
    linked = stage(deployment, "symlink_copy", "ann", "/data/shared/archive/obs/vis.bin", "linked.bin")
    assert linked.status_code == 200 and linked.json()["status"] == "succeeded", linked.text
    across = stage(deployment, "symlink_copy", "ann", "/data/archive/obs/vis.bin", "across.bin")
    assert across.status_code == 400 and across.json()["code"] == "link_not_possible", across.text

    items = [
        {"method": "local_copy", "local_path_on_storage": "/data/archive/obs/ms", "relative_path": "copied.ms"},
        {"method": "symlink_copy", "local_path_on_storage": "/data/shared/archive/obs/ms", "relative_path": "l.ms"},
    ]
    bulk = httpx.post(f"{deployment.url}/api/v1/jobs", json={"username": "ann", "items": items}, timeout=60)
    assert bulk.status_code == 202, bulk.text
    ids = [item["job"]["job_id"] for item in bulk.json()["items"]]
    for job_id in [seed.json()["job_id"], linked.json()["job_id"], *ids]:
        done = wait_for(deployment, job_id, ended=lambda current: current["status"] in FINAL)
        assert done["status"] == "succeeded", done
        assert done["worker_id"].startswith("worker@skao-worker-"), f"a worker container ran it: {done['worker_id']}"

    area = deployment.shared / "users" / "ann"
    assert (area / "vis.bin").read_bytes() == data and (area / "linked.bin").read_bytes() == data
    assert (area / "linked.bin").stat().st_ino == (deployment.shared / "archive" / "obs" / "vis.bin").stat().st_ino
    for folder in ("copied.ms", "l.ms"):
        assert tree_files(area / folder) == tree
    assert (area / "vis.bin").stat().st_uid == UID


def test_a_file_is_downloaded_from_the_api(deployment: Deployment) -> None:
    data = os.urandom(100_000)
    write(deployment.archive / "dl" / "file.bin", data)
    response = httpx.post(
        f"{deployment.url}/stage_data",
        params={"method": "direct_download", "username": "bo"},
        json={"local_path_on_storage": "/data/archive/dl/file.bin", "relative_path": "file.bin"},
        timeout=60,
    )
    assert response.status_code == 200 and response.content == data


def test_a_stopped_worker_hands_its_job_back(deployment: Deployment) -> None:
    """``podman stop`` (SIGTERM) of the worker copying a throttled file: the job goes back to the
    queue and the other worker finishes it."""
    data = os.urandom(64 * MIB)
    write(deployment.archive / "big.bin", data)
    response = httpx.post(
        f"{deployment.url}/api/v1/jobs",
        json={"username": "cy", "items": [{"method": "local_copy", "local_path_on_storage": "/data/archive/big.bin",
                                           "relative_path": "big.bin"}]},
        timeout=60,
    )  # fmt: skip
    job_id = response.json()["items"][0]["job"]["job_id"]
    running = wait_for(deployment, job_id, copying=lambda current: current["bytes_done"] >= 8 * MIB)
    copying = running["worker_id"].split("@", 1)[1].split(":", 1)[0]  # the container's host name
    podman("stop", "--time=20", copying, timeout=60)
    done = wait_for(deployment, job_id, ended=lambda current: current["status"] in FINAL, timeout=180)
    assert done["status"] == "succeeded", done
    assert copying not in done["worker_id"], "the other worker finished it"
    attempts = httpx.get(f"{deployment.url}/api/v1/jobs/{job_id}/attempts", timeout=30).json()
    assert [attempt["outcome"] for attempt in attempts] == ["handed_back", "succeeded"], json.dumps(attempts)
    assert (deployment.shared / "users" / "cy" / "big.bin").read_bytes() == data


def test_the_runtime_image_holds_no_build_tools() -> None:
    found = podman("run", "--rm", "--entrypoint=sh", IMAGE, "-c",
                   "for tool in gcc cc c++ make node npm git; do command -v $tool; done; true")  # fmt: skip
    assert found.stdout.strip() == "", f"build tools in the runtime image: {found.stdout}"
    build = podman("run", "--rm", "--entrypoint=python", IMAGE, "-c", "import build", check=False)
    assert build.returncode != 0, "the wheel builder stays in the build stage"
