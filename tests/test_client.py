"""The public Python client (skao_staging.client) against a real service on loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveService, live_service
from skao_staging.client import ApiError, StagingClient, is_did

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    server, live = live_service(tmp_path_factory.mktemp("client"), max_bytes_per_second=4 * MIB)
    live.write_source("small.bin", b"s" * 1000)
    live.write_source("run/a.bin", b"a" * 10)
    live.write_source("run/sub/b.bin", b"b" * 20)
    live.write_source("big.bin", os.urandom(64 * MIB))  # 16 s at the cap: cancelled long before
    with server:
        yield live


@pytest.fixture
def client(served: LiveService) -> Iterator[StagingClient]:
    with StagingClient(served.url) as client:
        yield client


def test_stage_wait_and_read_back(served: LiveService, client: StagingClient, user: str) -> None:
    request = client.stage("small.bin", "in/small.bin", username=user, lifetime="P2D")
    seen: list[dict[str, Any]] = []
    final = request.wait(seen.append, timeout=30, interval=0.05)
    assert final["state"] == "succeeded" and final["bytes_done"] == 1000
    assert seen[-1] == final
    assert (served.users / user / "in/small.bin").read_bytes() == b"s" * 1000
    [job] = request.jobs()
    assert job["status"] == "succeeded" and job["expires_at"] is not None
    assert client.job(job["job_id"])["destination"] == job["destination"]
    assert client.usage(user)["held"]["bytes"] == 1000
    released = client.release(job["job_id"])
    assert released["release_reason"] == "released by user"
    assert not (served.users / user / "in/small.bin").exists()


def test_several_sources_land_in_one_folder(served: LiveService, client: StagingClient, user: str) -> None:
    request = client.stage(["small.bin", "run"], "many", username=user)
    assert request.wait(False, timeout=30)["state"] == "succeeded"
    area = served.users / user / "many"
    assert sorted(str(path.relative_to(area)) for path in area.rglob("*") if path.is_file()) == [
        "run/a.bin",
        "run/sub/b.bin",
        "small.bin",
    ]
    assert len(request.jobs()) == 2


def test_a_refusal_is_an_api_error_with_its_code(client: StagingClient, user: str) -> None:
    with pytest.raises(ApiError) as refused:
        client.stage("no/such.bin", "x.bin", username=user)
    assert (refused.value.status, refused.value.code) == (404, "source_not_found")
    with pytest.raises(ApiError) as unknown:
        client.job(987654321)
    assert unknown.value.status == 404 and unknown.value.code == "job_not_found"
    partly = client.stage(["small.bin", "missing.bin"], "partly", username=user)
    assert [item["error"]["code"] for item in partly.refused] == ["source_not_found"]


def test_cancel_a_running_request(client: StagingClient, user: str) -> None:
    request = client.stage("big.bin", "big.bin", username=user)
    deadline = time.monotonic() + 20
    while request.state()["counts"].get("running", 0) == 0:
        assert time.monotonic() < deadline, "the job never ran"
        time.sleep(0.05)
    request.cancel()
    assert request.wait(False, timeout=10)["state"] == "cancelled"


def test_plain_progress_lines_outside_a_notebook(
    client: StagingClient, user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client.stage("small.bin", "lines.bin", username=user).wait(timeout=30)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "no progress was shown"
    assert "succeeded: 1 jobs (1 succeeded), 1000 of 1000 bytes" in lines[-1]


def test_browse_config_and_download(served: LiveService, client: StagingClient, user: str, tmp_path: Path) -> None:
    roots = client.list_storage()
    assert roots["entries"], roots
    names = [entry["name"] for entry in client.list_storage("run")["entries"]]
    assert names == ["sub", "a.bin"]
    assert "local_copy" in [method["name"] for method in client.config()["methods"]]
    target = tmp_path / "got.bin"
    progress = list(client.download("small.bin", target, username=user))
    assert target.read_bytes() == b"s" * 1000 and progress[-1] == (1000, 1000)
    with pytest.raises(ApiError) as missing:
        list(client.download("nothing.bin", tmp_path / "none.bin", username=user))
    assert missing.value.code == "source_not_found" and not (tmp_path / "none.bin").exists()


def test_url_and_token_come_from_the_environment(served: LiveService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKAO_STAGING_URL", served.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "from-the-server")
    with StagingClient() as client:
        assert client.url == served.url
        assert client.http.headers["authorization"] == "Bearer from-the-server"
        assert client.me()["authenticated"] is False  # this service signs in nobody
    monkeypatch.setenv("SKAO_STAGING_TOKEN", "chosen")
    with StagingClient() as client:
        assert client.http.headers["authorization"] == "Bearer chosen"


@pytest.mark.parametrize(
    ("source", "expected"),
    [("sky:obs-1", True), ("sky:a/b.fits", True), ("demo/x:y", False), ("/abs:x", False), ("plain.bin", False)],
)
def test_what_counts_as_a_did(source: str, expected: bool) -> None:
    assert is_did(source) is expected


def test_a_notebook_gets_a_progress_bar(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Inside a Jupyter kernel the client shows a tqdm bar (a widget where ipywidgets is installed,
    text otherwise); the shell is recognised as IPython's kernel shell."""
    import sys
    import types

    from skao_staging import client as module

    class ZMQInteractiveShell:
        config: dict[str, object] = {}  # noqa: RUF012 - as IPython's, without a kernel app: tqdm falls back to text

    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert module._in_notebook()
    report = module._default_progress("abcdef123456")
    report({"state": "active", "jobs": 2, "counts": {"running": 2}, "bytes_done": 512, "bytes_total": 2048})
    report({"state": "succeeded", "jobs": 2, "counts": {"succeeded": 2}, "bytes_done": 2048, "bytes_total": 2048})
    shown = capsys.readouterr().err
    assert "request abcdef12" in shown and "2 jobs (2 succeeded), 2048 of 2048 bytes" in shown
    assert "2.05k/2.05k" in shown
