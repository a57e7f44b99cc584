"""Lifetimes: staged data expires and is removed by the service, only while it is as it was staged.

Real services on loopback (SQLite and MariaDB), real files; the reaper's election through a real
MariaDB with three processes' reapers, and a reaper killed with SIGKILL in the middle of a release.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster import BIN, Cluster, drop_database, fresh_database
from conftest import LiveService, live_service, make_settings
from skao_staging.auth import ANONYMOUS
from skao_staging.db import Database, upgrade
from skao_staging.items import StageItem
from skao_staging.reaper import ReleaseReason
from skao_staging.runtime import Runtime

ADMIN = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "staging-admins"}


def as_user(name: str) -> dict[str, str]:
    return {"X-Forwarded-User": name}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.removesuffix("Z"))


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def post_stage(
    service: LiveService, method: str, user: str, source: str, relative: str, **params: str
) -> httpx.Response:
    return httpx.post(
        f"{service.url}/stage_data",
        params={"method": method, "username": user, **params},
        json={"local_path_on_storage": source, "relative_path": relative},
        headers=as_user(user) if service.settings.auth_mode == "header" else {},
        timeout=60,
    )


def stage(service: LiveService, method: str, user: str, source: str, relative: str, **params: str) -> dict[str, Any]:
    response = post_stage(service, method, user, source, relative, **params)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def job_of(service: LiveService, job_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{service.url}/api/v1/jobs/{job_id}", headers=headers, timeout=30).json()
    return body


def released(service: LiveService, job_id: int) -> dict[str, Any]:
    return wait_until(
        lambda: (job := job_of(service, job_id))["released_at"] and job, what=f"the release of job {job_id}"
    )


def make_tree(service: LiveService, name: str) -> None:
    for relative, data in {"a.dat": b"a" * 10, "b.dat": b"b" * 20, "c.dat": b"c" * 30, "sub/d.dat": b"d" * 40}.items():
        service.write_source(f"{name}/{relative}", data)
    (service.storage / name / "empty").mkdir()


@pytest.fixture
def reaping(tmp_path: Path) -> Iterator[LiveService]:
    """A service whose reaper looks every 0.1 s."""
    server, service = live_service(tmp_path, reaper_interval_seconds=0.1)
    with server:
        yield service


def test_expiry_removes_exactly_what_was_staged(reaping: LiveService, user: str, name: str) -> None:
    service = reaping
    make_tree(service, name)
    source = service.write_source(f"{name}.fits", b"x" * 1000)
    area = service.user_area(user)
    area.mkdir(parents=True)
    (area / "mine.txt").write_text("the user's own file")

    copied = stage(service, "local_copy", user, f"{name}.fits", "copy.fits", lifetime="PT1S")
    tree = stage(service, "local_copy", user, name, "tree", lifetime="1")
    linked = stage(service, "symlink_copy", user, f"{name}.fits", "link.fits", lifetime="PT1S")
    kept = stage(service, "local_copy", user, f"{name}.fits", "kept.fits", lifetime="P1D")
    assert source.stat().st_nlink == 2
    assert parse_time(copied["expires_at"]) - parse_time(copied["finished_at"]) == timedelta(seconds=1)

    for job in (copied, tree, linked):
        record = released(service, job["job_id"])
        assert record["release_reason"] == "expired"
        assert record["release_note"] is None
    assert sorted(path.name for path in area.iterdir()) == ["kept.fits", "mine.txt"]
    assert source.read_bytes() == b"x" * 1000 and source.stat().st_nlink == 1  # only the link's name went
    assert job_of(service, kept["job_id"])["released_at"] is None
    log = service.log_file.read_text()
    assert f"job {tree['job_id']} released (expired)" in log and "files_removed=4" in log


def test_what_the_user_changed_is_kept_and_reported(service: LiveService, user: str, name: str) -> None:
    make_tree(service, name)
    (service.storage / name / "sub" / "e.dat").write_bytes(b"e" * 50)
    job = stage(service, "local_copy", user, name, "tree")
    tree = service.user_area(user) / "tree"
    assert parse_time(job["expires_at"]) - parse_time(job["finished_at"]) == timedelta(days=14)  # the default

    replacement = tree / "new-a"
    replacement.write_bytes(b"the user's a")
    replacement.replace(tree / "a.dat")  # replaced: a new inode at the name
    (tree / "b.dat").chmod(0o644)
    with (tree / "b.dat").open("ab") as edited:  # edited in place
        edited.write(b"more")
    (tree / "c.dat").rename(service.user_area(user) / "c-moved.dat")  # moved out of the folder
    outside = service.outside / f"{name}-secret"
    outside.mkdir()
    (outside / "d.dat").write_bytes(b"d" * 40)  # what the symlink would lead to
    (tree / "sub").rename(tree / "sub-moved")
    (tree / "sub").symlink_to(outside)  # planted after staging: never followed

    response = httpx.delete(f"{service.url}/api/v1/jobs/{job['job_id']}/data", timeout=30)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["release_reason"] == "released by user" and record["released_at"]
    note = record["release_note"]
    assert "'tree/a.dat' is no longer the staged file" in note
    assert "'tree/b.dat' was modified after it was staged" in note
    assert "'tree/sub/d.dat' is no longer the staged file" in note
    assert "folder 'tree' is not empty" in note and "folder 'tree/sub' is not empty or was replaced" in note
    assert "1 file(s) were no longer there" in note  # c.dat, moved away
    assert (tree / "a.dat").read_bytes() == b"the user's a"
    assert (tree / "b.dat").read_bytes() == b"b" * 20 + b"more"
    assert (service.user_area(user) / "c-moved.dat").read_bytes() == b"c" * 30
    assert (outside / "d.dat").read_bytes() == b"d" * 40 and (tree / "sub").is_symlink()
    # the moved folder still holds staged files, but no longer where they were published
    assert sorted(p.name for p in (tree / "sub-moved").iterdir()) == ["d.dat", "e.dat"]
    assert not (tree / "empty").exists()  # the job's own empty folder went

    again = httpx.delete(f"{service.url}/api/v1/jobs/{job['job_id']}/data", timeout=30)
    assert again.status_code == 409 and again.json()["code"] == "no_data_held"


def test_seed_endpoint_takes_a_lifetime(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}.dat", b"s" * 100)
    job = stage(service, "local_copy", user, f"{name}.dat", "one.dat", lifetime="PT2H")
    assert job["lifetime"] == 7200
    assert parse_time(job["expires_at"]) - parse_time(job["finished_at"]) == timedelta(hours=2)

    for lifetime, code in (("soon", "invalid_lifetime"), ("-PT1S", "invalid_lifetime"), ("P1000D", "invalid_lifetime")):
        response = post_stage(service, "local_copy", user, f"{name}.dat", f"{lifetime}.dat", lifetime=lifetime)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == code
        assert job_of(service, body["job_id"])["error_code"] == code  # recorded
    assert not (service.user_area(user) / "soon.dat").exists()

    bulk = httpx.post(
        f"{service.url}/api/v1/jobs",
        json={
            "username": user,
            "lifetime": "P2D",
            "items": [
                {"method": "local_copy", "local_path_on_storage": f"{name}.dat", "relative_path": "b1.dat"},
                {
                    "method": "local_copy",
                    "local_path_on_storage": f"{name}.dat",
                    "relative_path": "b2.dat",
                    "lifetime": 60,
                },
            ],
        },
        timeout=30,
    ).json()
    assert [item["job"]["lifetime"] for item in bulk["items"]] == [2 * 86400, 60]


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[LiveService]:
    server, service = live_service(tmp_path, auth_mode="header", quota_held_bytes_per_user=1000)
    with server:
        yield service


def test_release_and_extend_are_for_the_owner_and_admins(guarded: LiveService, name: str) -> None:
    service = guarded
    service.write_source(f"{name}.dat", b"o" * 100)
    job = stage(service, "local_copy", "alice", f"{name}.dat", "owned.dat")
    url = f"{service.url}/api/v1/jobs/{job['job_id']}"

    for request in (
        httpx.delete(f"{url}/data", headers=as_user("bob")),
        httpx.patch(url, json={"lifetime": "P1D"}, headers=as_user("bob")),
    ):
        assert request.status_code == 404 and request.json()["code"] == "job_not_found"
    assert (service.user_area("alice") / "owned.dat").exists()

    extended = httpx.patch(url, json={"lifetime": "P30D"}, headers=as_user("alice"))
    assert extended.status_code == 200, extended.text
    expires = parse_time(extended.json()["expires_at"])
    assert abs(expires - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
    too_long = httpx.patch(url, json={"lifetime": "P91D"}, headers=as_user("alice"))
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid_lifetime"
    forever = httpx.patch(url, json={"lifetime": 0}, headers=as_user("alice"))
    assert forever.status_code == 403 and forever.json()["code"] == "lifetime_not_allowed"
    by_admin = httpx.patch(url, json={"lifetime": 0}, headers=ADMIN)
    assert by_admin.status_code == 200 and by_admin.json()["expires_at"] is None

    removed = httpx.delete(f"{url}/data", headers=ADMIN)
    assert removed.status_code == 200 and removed.json()["release_reason"] == "released by admin"
    assert not (service.user_area("alice") / "owned.dat").exists()
    late = httpx.patch(url, json={"lifetime": "P1D"}, headers=as_user("alice"))
    assert late.status_code == 409 and late.json()["code"] == "no_data_held"


def test_held_quota_counts_what_is_held_not_hard_links(guarded: LiveService, name: str) -> None:
    service = guarded
    service.write_source(f"{name}.dat", b"q" * 600)
    first = stage(service, "local_copy", "carol", f"{name}.dat", "first.dat")
    over = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "local_copy"},
        json={"local_path_on_storage": f"{name}.dat", "relative_path": "second.dat"},
        headers=as_user("carol"),
        timeout=30,
    )
    assert over.status_code == 413 and over.json()["code"] == "quota_exceeded", over.text
    assert "held now: 600" in over.json()["detail"]
    assert not (service.user_area("carol") / "second.dat").exists()
    stage(service, "symlink_copy", "carol", f"{name}.dat", "linked.dat")  # a second name: zero bytes

    request = httpx.post(
        f"{service.url}/api/v1/jobs",
        json={"items": [{"method": "local_copy", "local_path_on_storage": f"{name}.dat", "relative_path": "x.dat"}]},
        headers=as_user("carol"),
        timeout=30,
    )
    assert request.status_code == 413 and request.json()["code"] == "quota_exceeded"

    assert (
        httpx.delete(f"{service.url}/api/v1/jobs/{first['job_id']}/data", headers=as_user("carol")).status_code == 200
    )
    stage(service, "local_copy", "carol", f"{name}.dat", "second.dat")


def test_three_reapers_never_act_at_once(tmp_path: Path) -> None:
    """Three processes' reapers on one MariaDB: one acts at a time; when it stops, another goes on."""
    database, url = fresh_database()
    try:
        db = Database(url)
        upgrade(db)
        db.dispose()
        settings = make_settings(tmp_path, url, reaper_interval_seconds=0.05, default_lifetime=timedelta(seconds=1))
        for index in range(60):
            (settings.storage_roots[0] / f"f{index}.dat").write_bytes(b"r" * 100)
        jobs_dir = tmp_path / "users" / "dave"
        quiet = settings.model_copy(update={"reaper_interval_seconds": 3600})  # stages, never reaps
        staging = Runtime(quiet, Database(url), role="api", threads=2)
        staging.start()
        try:
            items = [StageItem("local_copy", "dave", f"f{index}.dat", f"f{index}.dat") for index in range(60)]
            staging.service.submit_many("dave", items, ANONYMOUS)
            wait_until(lambda: jobs_dir.exists() and len(list(jobs_dir.iterdir())) == 60, what="staging")
        finally:
            staging.stop()

        calls: list[tuple[str, float, float]] = []
        lock = threading.Lock()
        reapers = [Runtime(settings, Database(url), role="worker", threads=1) for _ in range(3)]
        for runtime in reapers:
            assert runtime.reaper is not None
            release = runtime.reaper.releaser.release

            def timed(
                job: Any, reason: ReleaseReason, release: Any = release, who: str = runtime.executor.process_id
            ) -> bool:
                started = time.monotonic()
                try:
                    return bool(release(job, reason))
                finally:
                    with lock:
                        calls.append((who, started, time.monotonic()))
                    time.sleep(0.02)  # slow enough that the others try to lead meanwhile

            runtime.reaper.releaser.release = timed  # type: ignore[method-assign]
        for runtime in reapers:
            runtime.start()
        try:
            wait_until(lambda: len(calls) >= 15, what="the first releases")
            first = calls[0][0]
            next(runtime for runtime in reapers if runtime.executor.process_id == first).stop()
            wait_until(lambda: not list(jobs_dir.iterdir()), what="every release")
        finally:
            for runtime in reapers:
                runtime.stop()
        assert len(calls) == 60  # each job released once
        assert len({who for who, _, _ in calls}) >= 2  # the lead moved when its holder stopped
        ordered = sorted(calls, key=lambda call: call[1])
        for (who, _, ended), (other, started, _) in itertools.pairwise(ordered):
            assert who == other or started >= ended, "two reapers released at once"
    finally:
        drop_database(database)


def test_a_reaper_killed_midway_resumes(tmp_path: Path) -> None:
    database, url = fresh_database()
    cluster = Cluster(tmp_path, url, reaper_interval_seconds=0.1, fsync="false")
    total = 10_000
    try:
        cluster.migrate()
        for index in range(total):
            cluster.source(f"big/{index // 100}/{index}.dat", b"k")
        api = cluster.start_api(embedded_worker=False)
        worker = cluster.start_worker()
        response = httpx.post(
            f"{api}/stage_data",
            params={"method": "local_copy", "username": "erin", "lifetime": "PT1S"},
            json={"local_path_on_storage": "big", "relative_path": "big"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        job_id = response.json()["job_id"]
        staged = cluster.users / "erin" / "big"
        folders = [staged / str(index) for index in range(total // 100)]

        def files() -> int:
            return sum(len(os.listdir(folder)) for folder in folders if folder.exists())

        deadline = time.monotonic() + 60
        while files() == total and time.monotonic() < deadline:  # until the reaper's first unlink
            pass
        worker.signal(signal.SIGSTOP)  # frozen at once, then killed: a release cut off midway
        worker.signal(signal.SIGKILL)
        worker.wait(10)
        remaining = files()
        assert 0 < remaining < total and cluster.job(job_id)["released_at"] is None
        cluster.start_worker()
        record = cluster.wait_for(job_id, ("succeeded",), timeout=60, released=lambda job: job["released_at"])
        assert not staged.exists()
        assert record["release_reason"] == "expired"
        assert record["release_note"] == f"{total - remaining} file(s) were no longer there"
        assert "Traceback" not in "".join(path.read_text() for path in tmp_path.glob("worker-*.out"))
    finally:
        cluster.stop()
        drop_database(database)


def test_usage_reports_what_is_held(guarded: LiveService, name: str) -> None:
    service = guarded
    service.write_source(f"{name}.dat", b"u" * 300)
    service.write_source(f"{name}/one.dat", b"1" * 10)
    service.write_source(f"{name}/two.dat", b"2" * 20)
    user = f"f{name}"
    stage(service, "local_copy", user, f"{name}.dat", "copy.dat", lifetime="PT2H")
    stage(service, "local_copy", user, name, "tree", lifetime="P2D")
    stage(service, "symlink_copy", user, f"{name}.dat", "link.dat", lifetime="PT1H")
    gone = stage(service, "local_copy", user, f"{name}.dat", "gone.dat")
    httpx.delete(f"{service.url}/api/v1/jobs/{gone['job_id']}/data", headers=as_user(user)).raise_for_status()

    usage = httpx.get(f"{service.url}/api/v1/usage", headers=as_user(user), timeout=30).json()
    assert usage["username"] == user and usage["quota_bytes"] == 1000
    assert usage["held"] == {"bytes": 330, "files": 4, "jobs": 3}
    assert usage["by_method"] == {
        "local_copy": {"bytes": 330, "files": 3, "jobs": 2},
        "symlink_copy": {"bytes": 0, "files": 1, "jobs": 1},
    }
    assert usage["expiring_24h"] == {"bytes": 300, "files": 2, "jobs": 2}

    other = httpx.get(f"{service.url}/api/v1/usage", params={"username": user}, headers=as_user("bob"), timeout=30)
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    table = httpx.get(f"{service.url}/api/v1/usage/users", headers=as_user("bob"), timeout=30)
    assert table.status_code == 403 and table.json()["code"] == "admin_only"
    rows = httpx.get(f"{service.url}/api/v1/usage/users", headers=ADMIN, timeout=30).json()
    assert next(row for row in rows if row["username"] == user)["held"] == usage["held"]
    metrics = httpx.get(f"{service.url}/metrics", timeout=30).text
    assert 'skao_staging_held_files{method="symlink_copy"}' in metrics
    assert 'skao_staging_releases_total{method="local_copy",reason="released by user"}' in metrics  # this process's


def test_command_line_stages_with_a_lifetime_shows_usage_and_releases(reaping: LiveService, name: str) -> None:
    service = reaping
    service.write_source(f"{name}.dat", b"c" * 123)
    user = f"c{name}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN), *args, "--url", service.url], capture_output=True, text=True, timeout=60)

    staged = run("stage", "local_copy", user, f"{name}.dat", "cli.dat", "--lifetime", "P3D")
    assert staged.returncode == 0, staged.stdout + staged.stderr
    assert "kept until" in staged.stdout
    shown = run("usage", "--username", user)
    assert shown.returncode == 0 and f"{user} holds 123 bytes" in shown.stdout
    job_id = httpx.get(f"{service.url}/api/v1/jobs", params={"username": user}).json()["jobs"][0]["job_id"]
    removed = run("release", str(job_id))
    assert removed.returncode == 0 and "released by user" in removed.stdout
    assert not (service.user_area(user) / "cli.dat").exists()
    again = run("release", str(job_id))
    assert again.returncode == 1 and "no_data_held" in again.stdout


def test_a_lifetime_changed_while_the_job_runs_counts_from_its_end(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'staging.db'}", max_bytes_per_second=2 * 1024 * 1024
    )  # a copy of 1.5 s
    (settings.storage_roots[0] / "late.dat").write_bytes(b"l" * 3 * 1024 * 1024)
    db = Database(settings.database_url)
    upgrade(db)
    api = Runtime(settings, db, role="api", threads=0)  # answers only
    api.start()
    worker = Runtime(settings, Database(settings.database_url), role="worker", threads=1)
    worker.start()
    try:
        job = api.service.submit(StageItem("local_copy", "gina", "late.dat", "late.dat", lifetime="PT1H"), ANONYMOUS)
        api.jobs_queued(1)
        wait_until(lambda: api.service.jobs.get(job.id).status == "running", what="the copy to start")  # type: ignore[union-attr]
        assert api.service.set_lifetime(job.id, "PT5H", ANONYMOUS).lifetime_seconds == 5 * 3600
        ended = wait_until(lambda: (found := api.service.jobs.get(job.id)) and found.finished_at and found)
    finally:
        worker.stop()
        api.stop()
    assert ended.status == "succeeded" and ended.expires_at - ended.finished_at == timedelta(hours=5)


def test_staging_the_same_data_again_keeps_it_as_long_as_asked(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}.dat", b"k" * 10)
    first = stage(service, "local_copy", user, f"{name}.dat", "same.dat", lifetime="PT1H")
    again = stage(service, "local_copy", user, f"{name}.dat", "same.dat", lifetime="P2D")
    assert again["status"] == "skipped" and again["expires_at"] is None  # it holds nothing itself
    extended = parse_time(job_of(service, first["job_id"])["expires_at"])
    assert abs(extended - (utcnow() + timedelta(days=2))) < timedelta(minutes=1)
    shorter = stage(service, "local_copy", user, f"{name}.dat", "same.dat", lifetime="PT1M")
    assert shorter["status"] == "skipped"
    assert parse_time(job_of(service, first["job_id"])["expires_at"]) == extended  # never shortened


def test_a_batch_of_releases_that_all_fail_ends_the_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reaper logs what it could not release and tries again next round, instead of spinning."""
    import skao_staging.reaper as reaper_module

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'staging.db'}")
    db = Database(settings.database_url)
    upgrade(db)
    runtime = Runtime(settings, db, role="worker", threads=1)
    past = utcnow() - timedelta(hours=1)
    for index in range(3):
        runtime.service.jobs.create(
            request_id="r", username="hal", method="local_copy", relative_path=f"{index}.dat",
            status="succeeded", output_identity="1:2:3", expires_at=past,
        )  # fmt: skip
    monkeypatch.setattr(reaper_module, "BATCH", 2)
    calls: list[int] = []

    def failing(job: Any, reason: ReleaseReason) -> bool:
        calls.append(job.id)
        raise OSError("the storage does not answer")

    assert runtime.reaper is not None
    monkeypatch.setattr(runtime.reaper.releaser, "release", failing)
    assert runtime.reaper.reap() == 0
    assert calls == [1, 2]  # one batch, then the round ended
    db.dispose()
