"""Answer latency across processes: the seed endpoint served by an API process whose jobs run in a
separate worker process (the Helm topology), on MariaDB and on PostgreSQL, with production defaults.

    .venv/bin/python bench/bench_latency.py [--answers 200] [--clients 8] [--idle-seconds 15]

For each database:
1. the baseline: an idle API's GET of one job (p50, p99), one client;
2. POST /stage_data?method=symlink_copy (one hard link) from one client in a loop, as scripts call it;
3. the same from ``--clients`` clients at once (answers per second);
4. the first answer after ``--settle-seconds`` + ``--idle-seconds`` of quiet, and the database's load
   during the last ``--idle-seconds`` of it:
   statements per second (MariaDB's ``Questions``) or transactions per second (PostgreSQL's
   ``pg_stat_database``), the API and the worker both running.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster import (  # noqa: E402
    Cluster,
    create_postgresql_database,
    drop_database,
    drop_postgresql_database,
    fresh_database,
)

PRODUCTION = {"poll_seconds": 0.5, "lease_seconds": 60, "retry_backoff_seconds": 30, "max_running_per_user": 0}


def p(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100)[percent - 1]


def mariadb_statements() -> int:
    connection = pymysql.connect(host="127.0.0.1", user="root", password="")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            ((_, value),) = cursor.fetchall()
            return int(value) - 1  # not counting this one
    finally:
        connection.close()


def postgresql_transactions(name: str) -> Callable[[], int]:
    def count() -> int:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as connection:
            row = connection.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (name,)
            ).fetchone()
            assert row is not None
            return int(row[0])

    return count


class Database:
    """A throwaway database on the local server, with a counter of the load it takes."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "mariadb":
            self.name, self.url = fresh_database()
            self.load: Callable[[], int] = mariadb_statements
            self.unit = "statements/s"
        else:
            self.name = f"skao_bench_{uuid.uuid4().hex[:10]}"
            create_postgresql_database(self.name)
            self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"
            self.load = postgresql_transactions(self.name)
            self.unit = "transactions/s"

    def drop(self) -> None:
        if self.kind == "mariadb":
            drop_database(self.name)
        else:
            drop_postgresql_database(self.name)


def stage(client: httpx.Client, api: str, index: int, tag: str) -> float:
    started = time.perf_counter()
    response = client.post(
        f"{api}/stage_data",
        params={"method": "symlink_copy", "username": "scripter"},
        json={"local_path_on_storage": f"links/f{index}", "relative_path": f"{tag}/f{index}"},
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert response.json()["status"] == "succeeded", response.text
    return elapsed


def measure(
    base: Path, kind: str, answers: int, clients: int, idle_seconds: float, settle_seconds: float
) -> dict[str, str]:
    database = Database(kind)
    cluster = Cluster(base / kind, database.url, **PRODUCTION)
    try:
        cluster.migrate()
        api = cluster.start_api(embedded_worker=False)
        cluster.start_worker(concurrency=4)
        for index in range(answers * 3):
            cluster.source(f"links/f{index}", b"x")
            (cluster.storage / f"links/f{index}").chmod(0o444)  # a hard link needs a read-only source
        with httpx.Client() as client:
            stage(client, api, 0, "warm")
            job_id = client.get(f"{api}/api/v1/jobs", params={"limit": 1}).json()["jobs"][0]["job_id"]
            gets = []
            for _ in range(answers):
                started = time.perf_counter()
                client.get(f"{api}/api/v1/jobs/{job_id}").raise_for_status()
                gets.append(time.perf_counter() - started)
            loop = [stage(client, api, index, "loop") for index in range(answers)]
        with ThreadPoolExecutor(clients) as pool:
            sessions = [httpx.Client() for _ in range(clients)]
            started = time.perf_counter()
            list(pool.map(lambda i: stage(sessions[i % clients], api, answers + i, "burst"), range(answers * 2)))
            rate = answers * 2 / (time.perf_counter() - started)
            for session in sessions:
                session.close()
        time.sleep(settle_seconds)  # past the busy period of polling, and PostgreSQL's statistics flushed
        before = database.load()
        time.sleep(idle_seconds)
        idle_load = (database.load() - before) / idle_seconds
        with httpx.Client() as client:
            first = stage(client, api, 0, "after-quiet")
        return {
            "idle API's GET of one job (baseline)": f"p50 {p(gets, 50) * 1000:.1f} ms, p99 {p(gets, 99) * 1000:.1f} ms",
            "seed endpoint, hard link, 1 client in a loop": (
                f"p50 {p(loop, 50) * 1000:.1f} ms, p99 {p(loop, 99) * 1000:.1f} ms "
                f"({p(loop, 50) / p(gets, 50):.1f}x the GET)"
            ),
            f"seed endpoint, hard link, {clients} clients": f"{rate:.0f} answers/s",
            f"first answer after {settle_seconds + idle_seconds:g} s of quiet": f"{first * 1000:.0f} ms",
            "idle database load (API + worker of 4 threads)": f"{idle_load:.1f} {database.unit}",
        }
    finally:
        cluster.stop()
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle-seconds", type=float, default=15)
    parser.add_argument("--settle-seconds", type=float, default=12)
    parser.add_argument("--databases", default="mariadb,postgresql")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="skao-bench-latency-"))
    kinds = args.databases.split(",")
    results = {
        kind: measure(base, kind, args.answers, args.clients, args.idle_seconds, args.settle_seconds) for kind in kinds
    }
    print("\n| measure (API process + 1 worker process, production defaults) | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    for key in results[kinds[0]]:
        print(f"| {key} | " + " | ".join(results[kind][key] for kind in kinds) + " |")


if __name__ == "__main__":
    main()
