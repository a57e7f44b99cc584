"""Benchmark of staging by Rucio DID, against a real Rucio server (its environment made by scripts/test).

    .venv/bin/python bench/bench_rucio.py [--expand 10000] [--files 1000]

1. Expanding a dataset of ``--expand`` files into jobs: time from POST /api/v1/jobs to its 202,
   against the catalogue's own answer to the same reads (list_files, then list_replicas of every
   file in batches of 250), from one client and from four at once as the service asks them: the
   part of the expansion that is Rucio's.
2. Staging a dataset of ``--files`` small files by DID (local_copy, one job per file) against the same
   files staged as one folder (one job), through the same service in the same run; split into the
   POST (expansion, against the catalogue's own reads of those files) and the staging after its 202.
The Rucio server runs ``--rucio-workers`` gunicorn workers (a deployment runs several).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rucio.client import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster import free_port, wait_ready  # noqa: E402
from rucio_server import RucioServer, Site  # noqa: E402

BIN = Path(sys.executable).with_name("skao-staging")


def register(site: Site, scope: str, dataset: str, count: int, size: int) -> dict[str, bytes]:
    """``count`` files of ``size`` bytes at the site, attached to ``dataset`` (in batches, as a site would)."""
    client = site.client
    client.add_dataset(scope, dataset)
    files: dict[str, bytes] = {}
    batch: list[dict[str, object]] = []
    for index in range(count):
        name = f"{dataset}-{index:05d}.dat"
        data = os.urandom(size)
        did = f"{scope}:{name}"
        pfn = client.lfns2pfns(site.rse, [did], operation="write", scheme="file")[did]
        path = site.mount / pfn.removeprefix(site.pfn_prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[name] = data
        batch.append({"scope": scope, "name": name, "bytes": size, "adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"})
        if len(batch) == 100 or index == count - 1:  # Rucio on SQLite refuses larger batches
            client.add_replicas(site.rse, batch)
            client.attach_dids(scope, dataset, [{"scope": scope, "name": item["name"]} for item in batch])
            batch = []
    return files


def read_replicas(clients: list[Client], rse: str, scope: str, dataset: str) -> float:
    """Seconds the catalogue takes to answer the expansion's reads: list_files, then list_replicas of
    its files in batches of 250, asked by ``clients`` at once (one client: one after the other)."""
    started = time.perf_counter()
    names = [row["name"] for row in clients[0].list_files(scope, dataset)]
    batches = [
        [{"scope": scope, "name": name} for name in names[start : start + 250]] for start in range(0, len(names), 250)
    ]

    def read(index: int) -> int:
        client = clients[index % len(clients)]
        return len(list(client.list_replicas(batches[index], schemes=["file"], rse_expression=rse)))

    with ThreadPoolExecutor(len(clients)) as pool:
        assert sum(pool.map(read, range(len(batches)))) == len(names)
    return time.perf_counter() - started


def serve(base: Path, rucio: RucioServer, site: Site, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
    env.update(
        STAGING_STORAGE_ROOTS=str(base / "storage"),
        STAGING_USER_AREAS=str(base / "users" / "{username}"),
        STAGING_DATABASE_URL=f"sqlite:///{base / 'staging.db'}",
        STAGING_LOG_FILE=str(base / "staging_service.log"),
        STAGING_RUCIO_URL=rucio.url,
        STAGING_RUCIO_ACCOUNT="root",
        STAGING_RUCIO_USERNAME="ddmlab",
        STAGING_RUCIO_PASSWORD="secret",
        STAGING_RUCIO_RSE=site.rse,
        STAGING_RUCIO_RSE_MOUNTS=f'{{"{site.pfn_prefix}": "{site.mount}"}}',
        STAGING_MAX_ITEMS_PER_REQUEST="100000",
        STAGING_MAX_RUNNING_PER_USER="0",
        **{f"STAGING_{key.upper()}": value for key, value in settings.items()},
    )
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    return process, url


def submit(url: str, user: str, item: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    response = httpx.post(f"{url}/api/v1/jobs", json={"username": user, "items": [item]}, timeout=600)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, str(response.json()["request_id"])


def wait_ended(url: str, request_id: str) -> None:
    while httpx.get(f"{url}/api/v1/requests/{request_id}", timeout=60).json()["state"] == "active":
        time.sleep(0.1)


def wait(url: str, request_id: str) -> None:
    while True:
        state = httpx.get(f"{url}/api/v1/requests/{request_id}", timeout=60).json()
        if state["state"] != "active":
            assert state["state"] == "succeeded", state
            return
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expand", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rucio-workers", type=int, default=2)
    parser.add_argument("--batch-jobs", default="64", help="STAGING_BATCH_JOBS of the service (1: no batches)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="skao-bench-rucio-"))
    rucio = RucioServer(base / "rucio", workers=args.rucio_workers)
    rucio.workdir.mkdir()
    rucio.start()
    service = None
    try:
        client = rucio.client()
        client.add_scope("root", "bench")
        site = Site.create(client, "SITE_LOCAL", "/srcnet/site", base / "storage" / "rse")
        started = time.perf_counter()
        register(site, "bench", "big", args.expand, 16)
        small = register(site, "bench", "small", args.files, 4096)
        seeding = time.perf_counter() - started
        folder = base / "storage" / "folder"
        folder.mkdir()
        for name, data in small.items():
            (folder / name).write_bytes(data)
        catalogue_time = read_replicas([client], site.rse, "bench", "big")
        parallel = [rucio.client() for _ in range(4)]  # as the service asks: STAGING_RUCIO_PARALLEL_REQUESTS=4
        floor_time = read_replicas(parallel, site.rse, "bench", "big")
        small_floor = read_replicas(parallel, site.rse, "bench", "small")
        service, url = serve(base, rucio, site, batch_jobs=args.batch_jobs)
        expand_time, expanded = submit(url, "ex", {"method": "local_copy", "did": "bench:big", "relative_path": "big"})
        httpx.delete(f"{url}/api/v1/requests/{expanded}", timeout=600).raise_for_status()  # measured: its 202 only
        wait_ended(url, expanded)
        started = time.perf_counter()
        did_post, request_id = submit(
            url, "by-did", {"method": "local_copy", "did": "bench:small", "relative_path": "s"}
        )
        wait(url, request_id)
        did_time = time.perf_counter() - started
        started = time.perf_counter()
        item = {"method": "local_copy", "local_path_on_storage": str(folder), "relative_path": "s"}
        _, request_id = submit(url, "by-folder", item)
        wait(url, request_id)
        folder_time = time.perf_counter() - started
    finally:
        if service is not None:
            service.terminate()
            service.wait(60)
        rucio.stop()
        shutil.rmtree(base, ignore_errors=True)

    print(f"\n(catalogue seeded in {seeding:.1f} s)\n")
    print("| measure | value | baseline | ratio |")
    print("|---|---|---|---|")
    print(
        f"| POST /api/v1/jobs of a {args.expand}-file dataset, to its 202 (expansion) vs the catalogue's own "
        f"list_files + list_replicas of its files | {expand_time:.2f} s | {catalogue_time:.2f} s | "
        f"{expand_time / catalogue_time:.2f} |"
    )
    print(
        f"| the same POST vs the same reads asked 4 at a time, as the service asks them (Rucio's floor here) | "
        f"{expand_time:.2f} s | {floor_time:.2f} s | {expand_time / floor_time:.2f} |"
    )
    print(
        f"| {args.files} small files by dataset DID (one job each) vs the same files as one folder | "
        f"{did_time:.2f} s | {folder_time:.2f} s | {did_time / folder_time:.2f} |"
    )
    print(
        f"| of which: its POST (expansion) vs the catalogue's own reads of the {args.files} files, 4 at a time | "
        f"{did_post:.2f} s | {small_floor:.2f} s | {did_post / small_floor:.2f} |"
    )
    print(
        f"| of which: staging its {args.files} jobs, after the 202, vs the folder | "
        f"{did_time - did_post:.2f} s | {folder_time:.2f} s | {(did_time - did_post) / folder_time:.2f} |"
    )
    print(
        f"| the catalogue's reads of the {args.files} files alone vs the folder (the aim's floor here) | "
        f"{small_floor:.2f} s | {folder_time:.2f} s | {small_floor / folder_time:.2f} |"
    )


if __name__ == "__main__":
    main()
