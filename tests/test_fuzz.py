"""Property-based fuzzing of every endpoint from the OpenAPI schema (schemathesis), and a corpus of
hostile paths and usernames against every method: no 5xx, nothing written outside the user areas."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cluster import free_port, wait_ready

BIN = Path(sys.executable).parent
FUZZ_EXAMPLES = int(os.environ.get("STAGING_FUZZ_EXAMPLES", "130"))
CONTRACT_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
AUTH_MODES = {
    "none": ({}, []),
    "header": (
        {"STAGING_AUTH_MODE": "header", "STAGING_TRUSTED_PROXIES": "127.0.0.1/32", "STAGING_ADMIN_USERS": "root"},
        ["--header", "X-Forwarded-User: mallory", "--header", "X-Forwarded-Groups: astro"],
    ),
}

HOSTILE_PATHS = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "\u2024\u2024/\u2024\u2024/etc",
    "..\uff0f..\uff0fetc",
    "\u2215etc\u2215passwd",
    "..\\..\\etc\\passwd",
    "//etc/passwd",
    "/proc/self/environ",
    "data.bin\x00.txt",
    "data.bin%00",
    "a\r\nINFO forged log line",
    "\x1b[31mred",
    "\u202etxt.exe",
    "~root/.ssh/id_rsa",
    "a/" * 3000,
    "x" * 5000,
    ".",
    "./",
    "data.bin/..",
    "/",
    "",
    " ",
    "\ufeffdata.bin",
    "\uff44\uff41\uff54\uff41.bin",
    "data.bin\u200b",
]
HOSTILE_USERS = [
    "../root",
    "root/..",
    "%2e%2e",
    "\u2024\u2024",
    "alice\nbob",
    "alice\x00",
    "-rf",
    ".ssh",
    "a" * 65,
    "\uff41\uff4c\uff49\uff43\uff45",
    "alice\u200b",
    "alice bob",
    "alice;rm",
    "$(id)",
    "`id`",
    "admin'--",
    "\u202ealice",
    "",
]
METHODS = ["local_copy", "symlink_copy", "direct_download", "direct_dowload", "jupyter_copy"]


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "data.bin").write_bytes(b"data")
    (tmp_path / "storage" / "data.bin").chmod(0o444)
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    env.update(
        STAGING_STORAGE_ROOTS=str(tmp_path / "storage"),
        STAGING_USER_AREAS=str(tmp_path / "users" / "{username}"),
        STAGING_DATABASE_URL=f"sqlite:///{tmp_path / 'staging.db'}",
        STAGING_LOG_FILE=str(tmp_path / "staging_service.log"),
        STAGING_SYNC_TIMEOUT_SECONDS="10",
        STAGING_ENABLE_FILE_TOOL="true",
    )
    env.update(AUTH_MODES[getattr(request, "param", "none")][0])
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "skao-staging"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url, tmp_path
    finally:
        process.terminate()
        process.wait(30)


def written_outside_user_areas(base: Path, *also: str) -> list[str]:
    allowed = ("users/", "storage/data.bin", "staging.db", "staging_service.log", "report/", *also)
    return [
        str(path.relative_to(base))
        for path in base.rglob("*")
        if path.is_file() and not str(path.relative_to(base)).startswith(allowed)
    ]


@pytest.mark.parametrize("served", list(AUTH_MODES), indirect=True)
def test_fuzz_every_endpoint_from_the_openapi_schema(served, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    """Every answer conforms to the published OpenAPI: status declared, content type declared, body valid
    against its schema, never a server error (examples, coverage, fuzzing and stateful phases)."""
    url, base = served
    mode = request.node.callspec.params["served"]
    result = subprocess.run(
        [
            str(BIN / "st"),
            "run",
            f"{url}/openapi.json",
            *AUTH_MODES[mode][1],
            "--checks",
            CONTRACT_CHECKS,
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--seed",
            "20261123",
            "--exclude-path-regex",
            "events|logs/stream",  # live SSE streams never end by design
            "--request-timeout",
            "30",
            "--report",
            "ndjson",
            "--report-dir",
            str(base / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    generated = re.search(r"(\d+) generated", summary)
    assert generated and int(generated.group(1)) >= 2500, summary  # 5,000 over the two modes
    print(f"schemathesis, auth {mode}: {generated.group(0)}")
    assert written_outside_user_areas(base, "storage/") == []  # the file tool writes in the first root
    for user_dir in (base / "users").glob("*") if (base / "users").exists() else []:
        assert user_dir.resolve().parent == (base / "users").resolve()


def test_hostile_inputs_against_every_method(served) -> None:  # type: ignore[no-untyped-def]
    url, base = served
    tried = 0
    with httpx.Client(timeout=30) as client:
        cases = itertools.chain(
            ((method, "mallory", path, "out.bin") for method in METHODS for path in HOSTILE_PATHS),
            ((method, "mallory", "data.bin", path) for method in METHODS for path in HOSTILE_PATHS),
            ((method, user, "data.bin", "out.bin") for method in METHODS for user in HOSTILE_USERS),
        )
        for method, user, source, relative in cases:
            response = client.post(
                f"{url}/stage_data",
                params={"method": method, "username": user},
                json={"local_path_on_storage": source, "relative_path": relative},
            )
            tried += 1
            assert response.status_code < 500, (method, user, source, relative, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) >= {"detail", "code"}
                assert str(base) not in response.text, "no server path in answers"
            download = client.get(f"{url}/api/v1/download", params={"path": source, "username": user})
            assert download.status_code < 500
            tried += 1
    assert tried == 2 * len(METHODS) * (2 * len(HOSTILE_PATHS) + len(HOSTILE_USERS))
    assert written_outside_user_areas(base) == []
    staged = [str(path.relative_to(base / "users")) for path in (base / "users").rglob("*") if path.is_file()]
    assert all(path.split("/")[0] in ("mallory",) for path in staged), staged
    log = (base / "staging_service.log").read_text()
    assert "\nINFO forged log line" not in log, "control characters cannot forge log lines"
    print(json.dumps({"hostile_requests": tried}))
