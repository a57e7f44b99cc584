"""Chaos: a few hundred mixed jobs while worker processes are killed and frozen and the database
restarts, at random (the seed is printed). Every job ends once, every result holds exactly its
source's bytes, and nothing is left behind."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from cluster import FINAL, Cluster, Process, query
from conftest import PrivateDatabase, leftovers, tree_files
from test_integrity import wait_until
from test_scale import copy_item

KIB = 1024
CHAOS_SECONDS = 25.0


def make_sources(cluster: Cluster, rng: random.Random) -> dict[str, bytes]:
    """Files of 16 KiB to 3 MiB, and ten small folders: ``{source path: bytes}`` (folders by file)."""
    contents: dict[str, bytes] = {}
    for index in range(240):
        contents[f"f/{index:03d}.bin"] = rng.randbytes(rng.randint(16 * KIB, 3 * KIB * KIB))
    for index in range(10):
        for name in ("a.bin", "sub/b.bin", "sub/c.bin"):
            contents[f"d/{index:02d}/{name}"] = rng.randbytes(rng.randint(KIB, 512 * KIB))
    for path, data in contents.items():
        cluster.source(path, data)
        (cluster.storage / path).chmod(0o444)  # so that symlink_copy may link them
    return contents


def make_items(rng: random.Random) -> dict[str, list[dict[str, str]]]:
    """Per user: local copies and hard links of files, folder copies, and repeats of earlier items."""
    items: dict[str, list[dict[str, str]]] = {"ada": [], "bo": [], "cy": []}
    users = list(items)
    for index in range(240):
        method = "symlink_copy" if index % 4 == 0 else "local_copy"
        items[users[index % 3]].append(copy_item(f"f/{index:03d}.bin", f"files/{index:03d}.bin", method))
    for index in range(10):
        items[users[index % 3]].append(copy_item(f"d/{index:02d}", f"dirs/{index:02d}"))
    for user in users:  # the same item again: skipped, or it waits for the first and is skipped
        items[user] += rng.sample(items[user], 10)
    return items


class Chaos:
    """Random faults, one at a time: SIGKILL a worker (a new one starts), freeze one past its
    lease (SIGSTOP, then SIGCONT), or restart the database."""

    def __init__(self, cluster: Cluster, db: PrivateDatabase, rng: random.Random) -> None:
        self.cluster, self.db, self.rng = cluster, db, rng
        self.workers: list[Process] = [cluster.start_worker(concurrency=3) for _ in range(3)]
        self.log: list[str] = []

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(self.rng.uniform(0.5, 1.5))
            fault = self.rng.choice((self.kill, self.kill, self.freeze, self.database_restart))
            fault()

    def kill(self) -> None:
        victim = self.rng.choice(self.workers)
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        self.workers.remove(victim)
        self.workers.append(self.cluster.start_worker(concurrency=3))
        self.log.append(f"kill {victim.pid}")

    def freeze(self) -> None:
        victim = self.rng.choice(self.workers)
        pause = self.rng.uniform(2.5, 4.0)  # past the 2 s lease: its jobs are taken over
        victim.signal(signal.SIGSTOP)
        time.sleep(pause)
        victim.signal(signal.SIGCONT)
        self.log.append(f"freeze {victim.pid} {pause:.1f}s")

    def database_restart(self) -> None:
        pause = self.rng.uniform(0.5, 2.0)
        self.db.server.stop()
        time.sleep(pause)
        self.db.server.start()
        self.log.append(f"database down {pause:.1f}s")


def test_chaos(private_database: PrivateDatabase, tmp_path: Path, record_property: Callable[..., None]) -> None:
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    record_property("chaos_seed", seed)
    print(f"chaos seed {seed} (CHAOS_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    db = private_database
    cluster = Cluster(
        tmp_path / "cluster", db.url, max_bytes_per_second=2 * KIB * KIB, max_attempts=6, max_running_per_user=4
    )
    try:
        cluster.migrate()
        api = cluster.start_api()
        contents = make_sources(cluster, rng)
        items = make_items(rng)
        requests = {user: cluster.submit(api, user, user_items)["request_id"] for user, user_items in items.items()}
        chaos = Chaos(cluster, db, rng)
        chaos.run(CHAOS_SECONDS)
        print("faults:", "; ".join(chaos.log))
        still_open = query(
            db.name, "SELECT COUNT(*) FROM staging_jobs WHERE status IN ('queued', 'running')", db.server.port
        )
        print(f"jobs not ended when the faults stopped: {still_open[0][0]}")

        for request_id in requests.values():
            cluster.wait_request(request_id, timeout=240)
        check_every_job_ended_once(db)
        check_the_results(cluster, db, contents)
        assert wait_until(lambda: not leftovers(cluster.users), timeout=30), leftovers(cluster.users)
    finally:
        cluster.stop()


def check_every_job_ended_once(db: PrivateDatabase) -> None:
    port = db.server.port
    statuses = dict(query(db.name, "SELECT status, COUNT(*) FROM staging_jobs GROUP BY status", port))
    assert set(statuses) <= set(FINAL) - {"cancelled"}, statuses
    failed = query(db.name, "SELECT id, error_code FROM staging_jobs WHERE status = 'failed'", port)
    assert {code for _, code in failed} <= {"interrupted"}, f"only repeated kills may fail a job: {failed}"
    endings = query(
        db.name,
        "SELECT job_id, COUNT(*) FROM staging_attempts WHERE outcome IN ('succeeded', 'skipped', 'failed') "
        "GROUP BY job_id HAVING COUNT(*) <> 1",
        port,
    )
    assert endings == [], f"jobs recorded as ended more than once: {endings}"
    hit = query(db.name, "SELECT COUNT(*) FROM staging_attempts WHERE outcome = 'interrupted'", db.server.port)
    assert hit[0][0] > 0, "no fault hit a running job: this run tested nothing"


def check_the_results(cluster: Cluster, db: PrivateDatabase, contents: dict[str, bytes]) -> None:
    rows = query(
        db.name,
        "SELECT username, local_path_on_storage, relative_path, status FROM staging_jobs",
        db.server.port,
    )
    for username, source, relative, status in rows:
        destination = cluster.users / username / relative
        if status == "failed":
            continue  # a repeat of it may have succeeded at the same destination
        if source.startswith("d/"):
            expected = {path[len(source) + 1 :]: data for path, data in contents.items() if path.startswith(source)}
            assert tree_files(destination) == expected, destination
        else:
            assert destination.read_bytes() == contents[source], destination
