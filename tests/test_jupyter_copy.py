"""jupyter_copy against a real JupyterHub with real single-user servers (tests/hub/harness.py)."""

from __future__ import annotations

import os
import stat
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveService, free_port, live_service, tree_files
from hub.harness import Hub


@pytest.fixture(scope="module")
def jservice(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    server, live = live_service(
        tmp_path_factory.mktemp("jservice"),
        jupyterhub_url=hub.url,
        jupyterhub_api_token=hub.token,
        jupyter_home_mounts=str(hub.homes / "{username}"),
        jupyter_chunk_bytes=1024 * 1024,
        jupyter_spawn_timeout_seconds=60,
        max_attempts=1,  # failures are asserted as they happen; retries have their own tests
    )
    with server:
        yield live


def adler(data: bytes) -> str:
    return f"adler32:{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def temporaries(home: Path) -> list[Path]:
    return list(home.rglob("*skao-staging-*")) if home.exists() else []


def test_binary_file_arrives_identical_and_read_only(jservice: LiveService, hub: Hub, hub_user: str) -> None:
    data = os.urandom(30 * 1024 * 1024 + 123)
    jservice.write_source(f"{hub_user}/vis.bin", data)
    started = time.monotonic()
    response = jservice.stage("jupyter_copy", hub_user, f"{hub_user}/vis.bin", "data/deep/vis.bin")
    assert response.status_code == 200, response.text
    body = response.json()
    staged = hub.home(hub_user) / "data" / "deep" / "vis.bin"
    assert staged.read_bytes() == data
    assert body["status"] == "succeeded" and body["checksum"] == adler(data)
    assert body["bytes"] == body["bytes_done"] == len(data)
    assert body["read_only"] is True and body["note"] is None
    assert stat.S_IMODE(staged.stat().st_mode) & 0o222 == 0
    assert body["destination"] == f"{hub.url}/user/{hub_user}/lab/tree/data/deep/vis.bin"
    assert temporaries(hub.home(hub_user)) == []
    assert time.monotonic() - started < 60
    server = hub.api("GET", f"/users/{hub_user}").json()["servers"][""]
    assert server["ready"], "the stopped server was started for the upload"


def test_identical_request_is_skipped_and_different_content_conflicts(
    jservice: LiveService, hub: Hub, hub_user: str
) -> None:
    jservice.write_source(f"{hub_user}/a.txt", b"first version")
    assert jservice.stage("jupyter_copy", hub_user, f"{hub_user}/a.txt", "a.txt").json()["status"] == "succeeded"
    staged = hub.home(hub_user) / "a.txt"
    before = staged.stat().st_mtime_ns
    again = jservice.stage("jupyter_copy", hub_user, f"{hub_user}/a.txt", "a.txt")
    assert again.status_code == 200 and again.json()["status"] == "skipped"
    assert staged.stat().st_mtime_ns == before

    jservice.write_source(f"{hub_user}/b.txt", b"other content")
    conflict = jservice.stage("jupyter_copy", hub_user, f"{hub_user}/b.txt", "a.txt")
    assert conflict.status_code == 409 and conflict.json()["code"] == "destination_exists"
    assert staged.read_bytes() == b"first version"


def test_folder_tree(jservice: LiveService, hub: Hub, hub_user: str) -> None:
    files = {"table.dat": os.urandom(5000), "ANTENNA/table.f0": os.urandom(3 * 1024 * 1024), "empty": b""}
    for relative, data in files.items():
        jservice.write_source(f"{hub_user}/obs.ms/{relative}", data)
    (jservice.storage / hub_user / "obs.ms" / "EMPTY_DIR").mkdir()
    response = jservice.stage("jupyter_copy", hub_user, f"{hub_user}/obs.ms", "ms/obs.ms")
    assert response.status_code == 200, response.text
    top = hub.home(hub_user) / "ms" / "obs.ms"
    assert tree_files(top) == files
    assert (top / "EMPTY_DIR").is_dir()
    assert response.json()["files"] == 3
    assert jservice.stage("jupyter_copy", hub_user, f"{hub_user}/obs.ms", "ms/obs.ms").json()["status"] == "skipped"
    assert temporaries(hub.home(hub_user)) == []


def test_a_stopped_server_is_started_first(jservice: LiveService, hub: Hub, hub_user: str) -> None:
    jservice.write_source(f"{hub_user}/one", b"1")
    assert jservice.stage("jupyter_copy", hub_user, f"{hub_user}/one", "one").status_code == 200
    hub.stop_server(hub_user)
    jservice.write_source(f"{hub_user}/two", b"2")
    response = jservice.stage("jupyter_copy", hub_user, f"{hub_user}/two", "two")
    assert response.status_code == 200, response.text
    assert (hub.home(hub_user) / "two").read_bytes() == b"2"


def test_unknown_user(jservice: LiveService) -> None:
    jservice.write_source("nobody-file", b"x")
    response = jservice.stage("jupyter_copy", "nobody-at-all", "nobody-file", "x")
    assert response.status_code == 404
    assert response.json()["code"] == "jupyter_user_unknown"


def test_spawn_failure_is_reported_with_the_hub_message(jservice: LiveService, hub: Hub) -> None:
    hub.add_user("broken")
    jservice.write_source("broken-file", b"x")
    started = time.monotonic()
    response = jservice.stage("jupyter_copy", "broken", "broken-file", "x")
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["code"] == "jupyter_spawn_failed"
    assert "failed to start" in body["detail"] and "didn't respond" in body["detail"]  # the hub's words
    assert time.monotonic() - started < jservice.settings.jupyter_spawn_timeout_seconds


def test_upload_failing_midway_leaves_nothing(jservice: LiveService, hub: Hub, hub_user: str) -> None:
    jservice.write_source(f"{hub_user}/big.bin", os.urandom(5 * 1024 * 1024))
    response = jservice.stage("jupyter_copy", hub_user, f"{hub_user}/big.bin", "explode/big.bin")
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["code"] == "jupyter_upload_failed"
    assert "refusing this chunk" in body["detail"]
    home = hub.home(hub_user)
    assert not (home / "explode" / "big.bin").exists()
    assert temporaries(home) == []
    row = jservice.job_row(body["job_id"])
    assert (row["status"], row["error_code"]) == ("failed", "jupyter_upload_failed")


def test_progress_is_recorded_while_uploading(jservice: LiveService, hub: Hub, hub_user: str) -> None:
    size = 60 * 1024 * 1024
    jservice.write_source(f"{hub_user}/slow.bin", os.urandom(size))
    item = {"method": "jupyter_copy", "local_path_on_storage": f"{hub_user}/slow.bin", "relative_path": "slow.bin"}
    job_id = httpx.post(f"{jservice.url}/api/v1/jobs", json={"username": hub_user, "items": [item]}).json()["items"][0][
        "job"
    ]["job_id"]
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = jservice.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] == "running":
            seen.add(job["bytes_done"])
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert any(0 < done < size for done in seen), f"no intermediate progress seen: {sorted(seen)}"


def test_token_without_a_scope_is_named(hub: Hub, hub_user: str, tmp_path: Path) -> None:
    server, live = live_service(tmp_path, jupyterhub_url=hub.url, jupyterhub_api_token=hub.limited_token)
    live.write_source("f", b"x")
    with server:
        response = live.stage("jupyter_copy", hub_user, "f", "f")
    assert response.status_code == 502, response.text
    assert response.json()["code"] == "jupyter_forbidden"
    assert "servers" in response.json()["detail"]
    assert hub.token not in response.text and hub.limited_token not in response.text
    assert hub.limited_token not in live.log_file.read_text()


def test_hub_down_and_no_mount(hub: Hub, hub_user: str, tmp_path: Path) -> None:
    down_server, down = live_service(
        tmp_path / "down", jupyterhub_url=f"http://127.0.0.1:{free_port()}", jupyterhub_api_token="x" * 16
    )
    down.write_source("f", b"x")
    with down_server:
        response = down.stage("jupyter_copy", hub_user, "f", "f")
    assert response.status_code == 503 and response.json()["code"] == "jupyter_unavailable"

    unmounted_server, unmounted = live_service(
        tmp_path / "unmounted", jupyterhub_url=hub.url, jupyterhub_api_token=hub.token
    )
    unmounted.write_source("g", b"y")
    with unmounted_server:
        body = unmounted.stage("jupyter_copy", hub_user, "g", "g").json()
    assert body["status"] == "succeeded" and body["read_only"] is False
    assert "read-only could not be enforced" in body["note"]


def test_not_enabled_without_a_hub(service: LiveService, user: str) -> None:
    config = service.get("/api/v1/config").json()
    assert "jupyter_copy" in config["unavailable_methods"]


def test_staged_data_expires_through_the_contents_api(hub: Hub, hub_user: str, tmp_path: Path) -> None:
    server, live = live_service(
        tmp_path,
        jupyterhub_url=hub.url,
        jupyterhub_api_token=hub.token,
        jupyter_home_mounts=str(hub.homes / "{username}"),
        jupyter_spawn_timeout_seconds=60,
        reaper_interval_seconds=0.1,
    )
    for name, data in {"one.bin": b"1" * 1000, "tree/a.bin": b"a" * 10, "tree/sub/b.bin": b"b" * 20}.items():
        live.write_source(f"{hub_user}/{name}", data)
    live.write_source(f"{hub_user}/tree/c.bin", b"c" * 30)
    home = hub.home(hub_user)
    with server:

        def stage(source: str, relative: str, lifetime: str) -> dict[str, Any]:
            response = httpx.post(
                f"{live.url}/stage_data",
                params={"method": "jupyter_copy", "username": hub_user, "lifetime": lifetime},
                json={"local_path_on_storage": f"{hub_user}/{source}", "relative_path": relative},
                timeout=120,
            )
            job: dict[str, Any] = response.json()
            return job

        one = stage("one.bin", "exp/one.bin", "PT1S")
        tree = stage("tree", "exp/tree", "PT3S")
        assert one["status"] == tree["status"] == "succeeded" and tree["expires_at"]
        edited = home / "exp" / "tree" / "c.bin"
        edited.chmod(0o644)
        edited.write_bytes(b"the user's own c")  # changed in the user's own server: kept

        def released(job_id: int) -> dict[str, object] | None:
            job: dict[str, object] = httpx.get(f"{live.url}/api/v1/jobs/{job_id}", timeout=30).json()
            return job if job["released_at"] else None

        deadline = time.monotonic() + 30
        while not (released(one["job_id"]) and released(tree["job_id"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        first, second = released(one["job_id"]), released(tree["job_id"])
        assert first is not None and second is not None
    assert first["release_reason"] == "expired" and first["release_note"] is None
    assert not (home / "exp" / "one.bin").exists()
    assert "'exp/tree/c.bin' is no longer the staged file" in str(second["release_note"])
    left = {str(path.relative_to(home / "exp")) for path in (home / "exp").rglob("*")}
    assert {path for path in left if ".ipynb_checkpoints" not in path} == {"tree", "tree/c.bin"}  # the server's own
    assert edited.read_bytes() == b"the user's own c"


def test_written_through_the_mounted_home_without_a_server(hub: Hub, hub_user: str, tmp_path: Path) -> None:
    """STAGING_JUPYTER_WRITE_MOUNTED_HOMES: the hub is asked about the user, the data is copied into
    the mounted home by the local engine (verified, read-only, the home's owner), no server starts,
    and its release goes through the mount."""
    home = hub.home(hub_user)
    home.mkdir(parents=True)  # provisioned by the site (a volume), before the user's first server
    os.chown(home, 4242, 4343)
    server, live = live_service(
        tmp_path,
        jupyterhub_url=hub.url,
        jupyterhub_api_token=hub.token,
        jupyter_home_mounts=str(hub.homes / "{username}"),
        jupyter_write_mounted_homes=True,
    )
    data = os.urandom(3 * 1024 * 1024 + 7)
    live.write_source(f"{hub_user}/vis.bin", data)
    files = {"ms/table.f0": b"t" * 5000, "ms/sub/table.f1": b"u" * 10}
    for name, content in files.items():
        live.write_source(f"{hub_user}/{name}", content)
    with server:
        response = live.stage("jupyter_copy", hub_user, f"{hub_user}/vis.bin", "data/vis.bin")
        assert response.status_code == 200, response.text
        job = response.json()
        assert job["status"] == "succeeded" and job["checksum"] == adler(data) and job["read_only"] is True
        staged = home / "data" / "vis.bin"
        assert staged.read_bytes() == data
        st = staged.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 4343, 0o444)
        assert (home / "data").stat().st_uid == 4242  # the folder made on the way too

        folder = live.stage("jupyter_copy", hub_user, f"{hub_user}/ms", "data/ms")
        assert folder.status_code == 200 and folder.json()["status"] == "succeeded", folder.text
        wanted = {name.removeprefix("ms/"): content for name, content in files.items()}
        assert tree_files(home / "data" / "ms") == wanted
        again = live.stage("jupyter_copy", hub_user, f"{hub_user}/vis.bin", "data/vis.bin")
        assert again.json()["status"] == "skipped"
        assert not hub.api("GET", f"/users/{hub_user}").json().get("servers")  # no server was needed
        assert temporaries(home) == []

        unknown = live.stage("jupyter_copy", "nobody-at-all", f"{hub_user}/vis.bin", "x.bin")
        assert unknown.status_code == 404 and unknown.json()["code"] == "jupyter_user_unknown"
        assert not (hub.homes / "nobody-at-all").exists()

        released = httpx.delete(f"{live.url}/api/v1/jobs/{job['job_id']}/data", timeout=30)
        assert released.status_code == 200, released.text
        assert not staged.exists() and (home / "data" / "ms" / "table.f0").exists()
