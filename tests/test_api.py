"""Methods, errors, job reading, configuration, probes and the log file, through HTTP."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from conftest import LiveService


def test_unknown_method_lists_the_enabled_ones(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"x")
    response = service.stage("teleport", user, f"{name}/f", "f")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_method"
    assert body["enabled_methods"] == ["local_copy", "symlink_copy", "direct_download"]
    row = service.job_row(body["job_id"])
    assert (row["status"], row["method"], row["error_code"]) == ("failed", "teleport", "unknown_method")


def test_jupyter_copy_is_not_enabled_yet(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"x")
    response = service.stage("jupyter_copy", user, f"{name}/f", "f")
    assert response.status_code == 400
    assert response.json()["code"] == "method_not_enabled"
    assert "not" in response.json()["detail"]


def test_missing_query_and_body_are_recorded(service: LiveService, user: str) -> None:
    no_method = httpx.post(
        f"{service.url}/stage_data",
        params={"username": user},
        json={"local_path_on_storage": "x", "relative_path": "y"},
    )
    assert no_method.status_code == 400 and no_method.json()["code"] == "unknown_method"
    bad_body = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "local_copy", "username": user},
        content=b"not json",
        headers={"content-type": "application/json"},
    )
    assert bad_body.status_code == 422
    body = bad_body.json()
    assert body["code"] == "invalid_request"
    assert service.job_row(body["job_id"])["username"] == user


def test_jobs_are_listed_newest_first_with_filters(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"x")
    ids = [service.stage("local_copy", user, f"{name}/f", f"f{i}").json()["job_id"] for i in range(3)]
    failed = service.stage("local_copy", user, f"{name}/missing", "m").json()["job_id"]
    page = service.get("/api/v1/jobs", params={"username": user, "limit": 2}).json()
    assert page["total"] == 4
    assert [job["job_id"] for job in page["jobs"]] == [failed, ids[2]]
    second = service.get("/api/v1/jobs", params={"username": user, "limit": 2, "offset": 2}).json()
    assert [job["job_id"] for job in second["jobs"]] == [ids[1], ids[0]]
    only_failed = service.get("/api/v1/jobs", params={"username": user, "status": "failed"}).json()
    assert [job["job_id"] for job in only_failed["jobs"]] == [failed]
    assert service.get("/api/v1/jobs", params={"status": "bogus"}).status_code == 422
    missing = service.get("/api/v1/jobs/999999999")
    assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"


def test_async_submission(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/a", b"a")
    items = [
        {"method": "local_copy", "local_path_on_storage": f"{name}/a", "relative_path": "a"},
        {"method": "local_copy", "local_path_on_storage": f"{name}/absent", "relative_path": "b"},
    ]
    response = httpx.post(f"{service.url}/api/v1/jobs", json={"username": user, "items": items})
    assert response.status_code == 202
    body = response.json()
    assert body["items"][0]["error"] is None
    assert body["items"][1]["error"]["code"] == "source_not_found"
    assert {item["job"]["request_id"] for item in body["items"][:1]} == {body["request_id"]}


def test_config_and_probes(service: LiveService) -> None:
    config = service.get("/api/v1/config").json()
    assert [method["name"] for method in config["methods"]] == ["local_copy", "symlink_copy", "direct_download"]
    assert config["methods"][2]["aliases"] == ["direct_dowload"]
    assert config["storage_roots"] == [str(service.storage)]
    assert "jupyter_copy" in config["unavailable_methods"]
    assert service.get("/healthz").json() == {"status": "ok"}
    assert service.get("/readyz").json() == {"status": "ready"}
    assert service.get("/nowhere").json()["code"] == "not_found"


def test_operations_are_in_the_log_file(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"logged")
    job_id = service.stage("local_copy", user, f"{name}/f", "f").json()["job_id"]
    refused = service.stage("local_copy", user, f"{name}/none", "g").json()["job_id"]
    log = service.log_file.read_text()
    done = [line for line in log.splitlines() if f"job {job_id} succeeded" in line]
    assert len(done) == 1
    for part in ("INFO", "method=local_copy", f"user={user}", f"source={name}/f", "bytes=6", "duration="):
        assert part in done[0]
    assert f"job {refused} refused" in log and "code=source_not_found" in log


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr is not installed")
def test_filesystem_errors_are_logged_with_a_trace(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"x")
    area = service.user_area(user)
    area.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(area)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable attribute")
    try:
        response = service.stage("local_copy", user, f"{name}/f", "f")
    finally:
        subprocess.run(["chattr", "-i", str(area)], check=True)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "permission_denied"
    assert str(area) not in response.text
    log = service.log_file.read_text()
    start = log.index(f"job {body['job_id']} failed on the filesystem")
    assert "ERROR" in log[start - 40 : start]
    assert "Traceback (most recent call last)" in log[start:]


def test_retrying_a_refusal_checks_it_again(service: LiveService, user: str, name: str) -> None:
    refused = service.stage("local_copy", user, f"{name}/x.bin", "../outside.bin")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_path"
    job_id = refused.json()["job_id"]
    retried = httpx.post(f"{service.url}/api/v1/jobs/{job_id}/retry", timeout=30)
    assert retried.status_code == 400 and retried.json()["code"] == "invalid_path", retried.text
    job = service.get(f"/api/v1/jobs/{job_id}").json()
    assert (job["status"], job["attempts"]) == ("failed", 0), "nothing was queued"


def test_retrying_a_refusal_whose_cause_went_away_stages(service: LiveService, user: str, name: str) -> None:
    missing = service.stage("local_copy", user, f"{name}/later.bin", "later.bin")
    assert missing.status_code == 404 and missing.json()["code"] == "source_not_found"
    service.write_source(f"{name}/later.bin", b"arrived")
    job_id = missing.json()["job_id"]
    retried = httpx.post(f"{service.url}/api/v1/jobs/{job_id}/retry", timeout=30)
    assert retried.status_code == 202, retried.text
    deadline = time.monotonic() + 30
    while service.get(f"/api/v1/jobs/{job_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, service.get(f"/api/v1/jobs/{job_id}").json()
        time.sleep(0.05)
    assert (service.user_area(user) / "later.bin").read_bytes() == b"arrived"


def test_a_body_that_is_not_utf8_is_an_invalid_request(service: LiveService, user: str) -> None:
    response = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "local_copy", "username": user},
        content=b'{"local_path_on_storage": "\xff\xfe", "relative_path": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_request", response.text


def test_unknown_paths_and_methods_answer_catalogue_codes(service: LiveService) -> None:
    from skao_staging.errors import CODES

    missing = service.get("/api/v1/nothing-here")
    wrong_method = httpx.put(f"{service.url}/api/v1/jobs", timeout=30)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert {"not_found", "method_not_allowed"} <= set(CODES)
