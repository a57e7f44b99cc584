"""Hostile text: C0/C1 controls, line and paragraph separators and bidirectional formatting characters
are refused in every path, user name and file-tool name (HTTP and CLI), and never reach a log line raw."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveService
from conftest import live_service as live

BIN = Path(sys.executable).with_name("skao-staging")
HOSTILE = {
    "CSI (C1)": "x\u009b31mred.txt",
    "NEL (C1)": "x\u0085INFO forged.txt",
    "line separator": "x\u2028y.txt",
    "right-to-left override": "report\u202etxt.exe",
    "first-strong isolate": "a\u2068b.txt",
    "escape (C0)": "x\x1b[31m.txt",
}


@pytest.fixture(scope="module")
def tooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    server, service = live(tmp_path_factory.mktemp("hostile"), enable_file_tool=True, log_level="INFO")
    with server:
        service.write_source("plain.bin", b"plain")
        yield service


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_refused_in_every_path(tooled: LiveService, text: str) -> None:
    as_destination = tooled.stage("local_copy", "hana", "plain.bin", f"in/{text}")
    as_source = tooled.stage("local_copy", "hana", f"dir/{text}", "out.bin")
    bulk = httpx.post(
        f"{tooled.url}/api/v1/jobs",
        json={"username": "hana", "items": [{"method": "local_copy", "local_path_on_storage": "plain.bin",
                                              "relative_path": text}]},
    )  # fmt: skip
    tool = httpx.post(f"{tooled.url}/api/v1/files", json={"path": f"t/{text}", "text": "x"})
    listing = httpx.get(f"{tooled.url}/api/v1/storage", params={"path": text})
    for response in (as_destination, as_source, tool, listing):
        assert response.status_code == 400 and response.json()["code"] == "invalid_path", response.text
    assert bulk.status_code == 202 and bulk.json()["items"][0]["error"]["code"] == "invalid_path", bulk.text
    assert bulk.json()["items"][0]["job"]["status"] == "failed", "a bulk item is refused on its own, recorded"
    assert list((tooled.user_area("hana")).rglob("*")) == [], "nothing was written"


@pytest.mark.parametrize("text", ["ann\u0085", "a\u202eb", "bob\u2028"])
def test_refused_in_user_names(tooled: LiveService, text: str) -> None:
    response = tooled.stage("local_copy", text, "plain.bin", "x.bin")
    assert response.status_code == 400 and response.json()["code"] == "invalid_username", response.text


def test_refused_through_the_command_line(tooled: LiveService) -> None:
    result = subprocess.run(
        [str(BIN), "stage", "local_copy", "hana", "plain.bin", HOSTILE["NEL (C1)"], "--url", tooled.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "invalid_path" in result.stdout, result.stdout + result.stderr


def test_a_method_name_cannot_forge_a_log_line(tooled: LiveService) -> None:
    """NEL in a method name: written escaped, and the Logs API returns the record as one line."""
    forged = "local_copy\u0085 INFO skao_staging.api forged line"
    response = httpx.post(
        f"{tooled.url}/stage_data",
        params={"method": forged, "username": "hana"},
        json={"local_path_on_storage": "plain.bin", "relative_path": "f.bin"},
    )
    assert response.status_code == 400
    log = tooled.log_file.read_text()
    assert "\u0085" not in log and "local_copy\\x85 INFO skao_staging.api forged line" in log
    lines = httpx.get(f"{tooled.url}/api/v1/logs", params={"search": "forged line"}).json()["lines"]
    assert lines and all("\\x85" in line for line in lines), lines
    assert not any(line.startswith(" INFO skao_staging.api forged") for line in lines)
