"""Limits and hardening: security headers, CORS, body size, active jobs and byte quotas per user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveService, live_service


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[LiveService]:
    server, live = live_service(
        tmp_path, max_body_bytes=4096, quota_bytes_per_day=1000, cors_origins=["https://ok.example"]
    )
    live.write_source("600.bin", b"x" * 600)
    with server:
        yield live


def test_security_headers_and_cors(limited: LiveService, service: LiveService) -> None:
    for url in (f"{limited.url}/healthz", f"{limited.url}/api/v1/jobs/999999", f"{service.url}/healthz"):
        headers = httpx.get(url).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    preflight = {"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}
    allowed = httpx.options(f"{limited.url}/api/v1/jobs", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://ok.example"
    other = httpx.get(f"{limited.url}/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    default = httpx.get(f"{service.url}/healthz", headers={"Origin": "https://ok.example"})
    assert "access-control-allow-origin" not in default.headers, "CORS is off unless configured"


def test_body_limit(limited: LiveService) -> None:
    items = [{"method": "local_copy", "local_path_on_storage": "600.bin", "relative_path": f"p{i}"} for i in range(200)]
    response = httpx.post(f"{limited.url}/api/v1/jobs", json={"username": "bea", "items": items})
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        yield b'{"username": "bea", "items": ['
        for _ in range(100):
            yield b'{"method": "local_copy", "local_path_on_storage": "600.bin", "relative_path": "x"},'
        yield b"]}"

    streamed = httpx.post(f"{limited.url}/api/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_byte_quota(limited: LiveService) -> None:
    first = limited.stage("local_copy", "quincy", "600.bin", "a.bin")
    assert first.status_code == 200, first.text
    second = limited.stage("local_copy", "quincy", "600.bin", "b.bin")
    assert second.status_code == 413 and second.json()["code"] == "quota_exceeded"
    assert limited.job_row(second.json()["job_id"])["status"] == "failed"
    assert limited.stage("local_copy", "other-user", "600.bin", "a.bin").status_code == 200


def test_active_jobs_per_user(tmp_path: Path) -> None:
    server, live = live_service(tmp_path, max_active_jobs_per_user=2, embedded_worker=False)
    live.write_source("f", b"f")
    item = {"method": "local_copy", "local_path_on_storage": "f", "relative_path": "f"}
    with server:
        ok = httpx.post(f"{live.url}/api/v1/jobs", json={"username": "zed", "items": [item, item]})
        refused = httpx.post(f"{live.url}/api/v1/jobs", json={"username": "zed", "items": [item]})
        other = httpx.post(f"{live.url}/api/v1/jobs", json={"username": "amy", "items": [item]})
    assert ok.status_code == 202
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_jobs"
    assert refused.headers["retry-after"] == "30"
    assert other.status_code == 202
