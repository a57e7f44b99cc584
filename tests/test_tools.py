"""Admin tools: the file-creation tool (off unless enabled) and the service log, backlog and live."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveService
from conftest import live_service as live


@pytest.fixture
def tooled(tmp_path: Path) -> Iterator[LiveService]:
    server, service = live(tmp_path, enable_file_tool=True, file_tool_max_bytes=4096, log_level="INFO")
    with server:
        yield service


def test_file_tool_is_off_by_default(service: LiveService) -> None:
    response = httpx.post(f"{service.url}/api/v1/files", json={"path": "x.txt", "text": "x"})
    assert response.status_code == 404 and response.json()["code"] == "file_tool_disabled"


def test_file_tool(tooled: LiveService) -> None:
    url = f"{tooled.url}/api/v1/files"
    made = httpx.post(url, json={"path": "tests/hello.txt", "text": "hello"})
    assert made.status_code == 201, made.text
    created = tooled.storage / "tests" / "hello.txt"
    assert created.read_text() == "hello" and stat.S_IMODE(created.stat().st_mode) == 0o444
    assert httpx.post(url, json={"path": "tests/random.bin", "size": 4000}).json()["bytes"] == 4000
    assert httpx.post(url, json={"path": "tests/hello.txt", "text": "again"}).json()["code"] == "file_exists"
    assert created.read_text() == "hello"
    assert httpx.post(url, json={"path": "big.bin", "size": 5000}).json()["code"] == "file_too_large"
    assert httpx.post(url, json={"path": "../escape.txt", "text": "x"}).status_code == 400
    assert not (tooled.storage.parent / "escape.txt").exists()
    staged = tooled.stage("local_copy", "tess", made.json()["local_path_on_storage"], "hello.txt")
    assert staged.status_code == 200


def test_log_backlog_and_live_stream(tooled: LiveService) -> None:
    tooled.write_source("f", b"f")
    first = tooled.stage("local_copy", "lou", "f", "one").json()["job_id"]
    tooled.stage("local_copy", "lou", "missing", "two")
    recent = httpx.get(f"{tooled.url}/api/v1/logs", params={"lines": 50}).json()["lines"]
    assert any(f"job {first} succeeded" in line for line in recent)
    warnings = httpx.get(f"{tooled.url}/api/v1/logs", params={"level": "WARNING"}).json()["lines"]
    assert warnings and all(" INFO " not in line for line in warnings)
    assert len(httpx.get(f"{tooled.url}/api/v1/logs", params={"lines": 3}).json()["lines"]) == 3

    seen: list[str] = []

    def listen() -> None:
        params = {"backlog_lines": 2, "search": "lou"}
        with httpx.stream("GET", f"{tooled.url}/api/v1/logs/stream", params=params, timeout=20) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))
                    if "three" in seen[-1]:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(1.0)
    tooled.stage("local_copy", "lou", "f", "three")
    listener.join(20)
    assert len(seen) >= 3 and all("lou" in line for line in seen)
    assert "three" in seen[-1], "a new line arrived live"
