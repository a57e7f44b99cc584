"""direct_download (and the seed's spelling direct_dowload): streamed, resumable, recorded."""

from __future__ import annotations

import os
import time

import httpx

from conftest import LiveService


def wait_final(service: LiveService, job_id: int) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job: dict[str, object] = service.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running")


def test_download_through_the_seed_endpoint(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    service.write_source(f"{name}/d.bin", data)
    for method in ("direct_download", "direct_dowload"):
        response = service.stage(method, user, f"{name}/d.bin", "saved.bin")
        assert response.status_code == 200, response.text
        assert response.content == data
        assert response.headers["content-disposition"].startswith("attachment")
        assert 'filename="saved.bin"' in response.headers["content-disposition"]
        job = wait_final(service, int(response.headers["x-staging-job-id"]))
        assert job["status"] == "succeeded"
        assert job["method"] == "direct_download"
        assert job["bytes_done"] == len(data)
    assert not service.user_area(user).exists(), "a download writes nothing in the user area"


def test_download_link_with_range(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(1_000_000)
    service.write_source(f"{name}/r.bin", data)
    params = {"path": f"{name}/r.bin", "username": user}
    whole = service.get("/api/v1/download", params=params)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    part = service.get("/api/v1/download", params=params, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = service.get("/api/v1/download", params=params, headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]


def test_interrupted_download_is_recorded(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/big.bin", os.urandom(64 * 1024 * 1024))
    params = {"path": f"{name}/big.bin", "username": user}
    with httpx.stream("GET", f"{service.url}/api/v1/download", params=params, timeout=30) as response:
        job_id = int(response.headers["x-staging-job-id"])
        next(response.iter_raw(65536))
    job = wait_final(service, job_id)
    assert job["status"] == "failed"
    assert job["error_code"] == "download_interrupted"


def test_download_refusals(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/folder/f", b"x")
    folder = service.get("/api/v1/download", params={"path": f"{name}/folder"})
    assert folder.status_code == 400 and folder.json()["code"] == "source_is_directory"
    missing = service.get("/api/v1/download", params={"path": f"{name}/none"})
    assert missing.status_code == 404 and missing.json()["code"] == "source_not_found"
    outside = service.get("/api/v1/download", params={"path": "/etc/passwd"})
    assert outside.status_code == 403
    assert "root:" not in outside.text
