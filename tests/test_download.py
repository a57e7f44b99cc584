"""direct_download (and the seed's spelling direct_dowload): streamed, resumable, recorded."""

from __future__ import annotations

import io
import os
import time
import zipfile

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
    missing = service.get("/api/v1/download", params={"path": f"{name}/none"})
    assert missing.status_code == 404 and missing.json()["code"] == "source_not_found"
    outside = service.get("/api/v1/download", params={"path": "/etc/passwd"})
    assert outside.status_code == 403
    assert "root:" not in outside.text


def test_direct_download_needs_no_relative_path(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(70_000)
    service.write_source(f"{name}/plain.bin", data)
    response = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "direct_download", "username": user},
        json={"local_path_on_storage": f"{name}/plain.bin"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.content == data
    assert 'filename="plain.bin"' in response.headers["content-disposition"], "named after the source"


def test_other_methods_still_need_a_relative_path(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/kept.bin", b"kept")
    response = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "local_copy", "username": user},
        json={"local_path_on_storage": f"{name}/kept.bin"},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_path" and "relative_path is required" in response.json()["detail"]
    row = service.job_row(response.json()["job_id"])
    assert (row["status"], row["error_code"]) == ("failed", "invalid_path"), "the refusal is recorded"


def test_a_folder_downloads_as_one_zip(service: LiveService, user: str, name: str) -> None:
    """A Measurement Set to the laptop: one stored ZIP named after the folder, streamed with its length."""
    files = {"obs.ms/table.dat": os.urandom(70_000), "obs.ms/ANTENNA/table.f0": os.urandom(3000), "obs.ms/x": b""}
    for relative, data in files.items():
        service.write_source(f"{name}/{relative}", data)
    (service.storage / name / "obs.ms" / "EMPTY").mkdir()
    response = service.get("/api/v1/download", params={"path": f"{name}/obs.ms", "username": user})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="obs.ms.zip"' in response.headers["content-disposition"]
    assert int(response.headers["content-length"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        found = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
        assert "obs.ms/EMPTY/" in archive.namelist()
    assert found == files
    job = wait_final(service, int(response.headers["x-staging-job-id"]))
    assert (job["status"], job["files"], job["bytes"]) == ("succeeded", 3, sum(map(len, files.values())))
