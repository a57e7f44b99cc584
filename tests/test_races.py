"""A folder of the destination swapped for a symlink while a copy runs cannot redirect its writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from cluster import free_port
from conftest import LiveService, ThreadedServer, make_settings
from skao_staging.api.app import create_app

MIB = 1024 * 1024


def test_swapping_a_destination_folder_for_a_symlink_mid_copy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db'}", max_bytes_per_second=8 * MIB)
    port = free_port()
    service = LiveService(
        f"http://127.0.0.1:{port}",
        settings,
        tmp_path / "storage",
        tmp_path / "users",
        tmp_path / "outside",
        Path(settings.log_file),
        settings.database_url,
    )
    service.outside.mkdir()
    for index in range(4):
        service.write_source(f"ds/part{index}.bin", os.urandom(4 * MIB))
    area = service.user_area("mallory")
    (area / "inbox").mkdir(parents=True)
    with ThreadedServer(create_app(settings), port):
        item = {"method": "local_copy", "local_path_on_storage": "ds", "relative_path": "inbox/ds"}
        job_id = httpx.post(f"{service.url}/api/v1/jobs", json={"username": "mallory", "items": [item]}).json()[
            "items"
        ][0]["job"]["job_id"]
        deadline = time.monotonic() + 20
        while not list((area / "inbox").glob(".skao-staging-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        (area / "inbox").rename(area / "moved-away")  # the attack: the folder becomes a symlink outside
        (area / "inbox").symlink_to(service.outside)
        while time.monotonic() < deadline:
            job = httpx.get(f"{service.url}/api/v1/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
    assert list(service.outside.iterdir()) == [], "nothing was written through the symlink"
    assert job["status"] == "succeeded"
    assert sorted(path.name for path in (area / "moved-away" / "ds").iterdir()) == [
        f"part{index}.bin" for index in range(4)
    ], "the copy finished in the folder it had opened"
