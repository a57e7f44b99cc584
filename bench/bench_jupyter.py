"""Benchmark of jupyter_copy against a real local JupyterHub, beside a plain single-PUT upload.

    .venv/bin/python bench/bench_jupyter.py [--size-mib 1024] [--chunks-kib 512,8192] [--runs 3]

For each chunk size, a fresh ``skao-staging serve`` uploads the file through the hub; the table shows
throughput and how much the service's peak RSS (VmHWM) grew. The baseline is one PUT of the whole
file (base64 in JSON) with httpx, in a subprocess whose peak RSS is measured the same way.
Then jupyter_copy written through the mounted home (STAGING_JUPYTER_WRITE_MOUNTED_HOMES) against
local_copy of the same file by the same service.
Needs ``npm ci`` in tests/hub (scripts/test does it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster import free_port, wait_ready  # noqa: E402
from hub.harness import Hub, install_proxy  # noqa: E402

BIN = Path(sys.executable).with_name("skao-staging")
MIB = 1024 * 1024

SINGLE_PUT = """
import base64, resource, sys, time, httpx
url, token, path = sys.argv[1:4]
started = time.perf_counter()
data = open(path, "rb").read()
model = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}
response = httpx.put(url, json=model, headers={"Authorization": f"token {token}"}, timeout=600)
response.raise_for_status()
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def run_service(base: Path, hub: Hub, chunk: int, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    env.update(
        STAGING_STORAGE_ROOTS=str(base / "storage"),
        STAGING_USER_AREAS=str(base / "users" / "{username}"),
        STAGING_DATABASE_URL=f"sqlite:///{base / f'staging-{chunk}.db'}",
        STAGING_LOG_FILE=str(base / "staging_service.log"),
        STAGING_JUPYTERHUB_URL=hub.url,
        STAGING_JUPYTERHUB_API_TOKEN=hub.token,
        STAGING_JUPYTER_CHUNK_BYTES=str(chunk),
    )
    env.update({f"STAGING_{key.upper()}": value for key, value in settings.items()})
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    return process, url


def stage(url: str, source: str, relative: str, method: str = "jupyter_copy") -> dict[str, object]:
    response = httpx.post(
        f"{url}/stage_data",
        params={"method": method, "username": "bench"},
        json={"local_path_on_storage": source, "relative_path": relative},
        timeout=1800,
    )
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def bench_service(base: Path, hub: Hub, chunk: int, size: int) -> tuple[float, int, int]:
    process, url = run_service(base, hub, chunk)
    try:
        stage(url, "tiny", f"warm-{chunk}")  # starts the user's server, warms imports and pools
        before = memory_kib(process.pid, "VmHWM")
        started = time.perf_counter()
        body = stage(url, "big.bin", f"big-{chunk}.bin")
        elapsed = time.perf_counter() - started
        assert body["status"] == "succeeded" and body["bytes"] == size, body
        after = memory_kib(process.pid, "VmHWM")
        return elapsed, before, after
    finally:
        process.terminate()
        process.wait(30)
        (hub.home("bench") / f"big-{chunk}.bin").unlink(missing_ok=True)


def bench_mounted(base: Path, hub: Hub, size: int, runs: int) -> tuple[float, float]:
    """Median seconds of jupyter_copy written through the mounted home, and of local_copy of the same file."""
    mounts = str(hub.homes / "{username}")
    process, url = run_service(base, hub, MIB, jupyter_home_mounts=mounts, jupyter_write_mounted_homes="true")
    through, local = [], []
    try:
        for run in range(runs):
            for method, times, folder in (("jupyter_copy", through, hub.home("bench")), ("local_copy", local, None)):
                subprocess.run(["sync"], check=True)
                started = time.perf_counter()
                body = stage(url, "big.bin", f"mounted-{run}.bin", method)
                times.append(time.perf_counter() - started)
                assert body["status"] == "succeeded" and body["bytes"] == size, body
                (folder or base / "users" / "bench").joinpath(f"mounted-{run}.bin").unlink()
    finally:
        process.terminate()
        process.wait(30)
    return statistics.median(through), statistics.median(local)


def bench_single_put(hub: Hub, source: Path) -> tuple[float, int]:
    url = f"{hub.url}/user/bench/api/contents/single-put.bin"
    output = subprocess.run(
        [sys.executable, "-c", SINGLE_PUT, url, hub.token, str(source)], capture_output=True, text=True, check=True
    ).stdout.split()
    (hub.home("bench") / "single-put.bin").unlink(missing_ok=True)
    return float(output[0]), int(output[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunks-kib", default="512,8192")
    parser.add_argument("--runs", type=int, default=3, help="runs of the mounted-home comparison (median)")
    args = parser.parse_args()
    install_proxy()
    base = Path(tempfile.mkdtemp(prefix="skao-bench-jupyter-"))
    (base / "storage").mkdir()
    source = base / "storage" / "big.bin"
    with open(source, "wb") as out:
        for _ in range(args.size_mib):
            out.write(os.urandom(MIB))
    (base / "storage" / "tiny").write_bytes(b"x")
    hub = Hub(base / "hub")
    (base / "hub").mkdir()
    hub.start()
    size = args.size_mib * MIB
    rows = []
    try:
        hub.add_user("bench")
        for chunk_kib in (int(value) for value in args.chunks_kib.split(",")):
            elapsed, before, after = bench_service(base, hub, chunk_kib * 1024, size)
            rows.append((f"jupyter_copy via the service, {chunk_kib} KiB chunks", elapsed, (after - before) * 1024))
        put_elapsed, put_rss = bench_single_put(hub, source)
        through, local = bench_mounted(base, hub, size, args.runs)
    finally:
        hub.stop()
        shutil.rmtree(base, ignore_errors=True)

    print(f"\n| {args.size_mib} MiB to a local JupyterHub | time | MB/s | peak RSS growth | vs single PUT |")
    print("|---|---|---|---|---|")
    for label, elapsed, growth in rows:
        print(
            f"| {label} | {elapsed:.2f} s | {size / elapsed / 1e6:.0f} | {growth / MIB:.0f} MiB "
            f"| {put_elapsed / elapsed:.2f}x the speed |"
        )
    print(
        f"| baseline: one PUT of the whole file with httpx | {put_elapsed:.2f} s | {size / put_elapsed / 1e6:.0f} "
        f"| {put_rss / MIB:.0f} MiB (whole client) | 1.00 |"
    )
    print(f"\n| {args.size_mib} MiB, median of {args.runs} | time | MB/s | vs local_copy |")
    print("|---|---|---|---|")
    print(
        f"| jupyter_copy written through the mounted home (STAGING_JUPYTER_WRITE_MOUNTED_HOMES) "
        f"| {through:.2f} s | {size / through / 1e6:.0f} | {local / through:.2f}x the speed |"
    )
    print(f"| baseline: local_copy of the same file | {local:.2f} s | {size / local / 1e6:.0f} | 1.00 |")


if __name__ == "__main__":
    main()
