"""The demo storage that ``serve`` fills when no storage root is configured."""

from __future__ import annotations

import os
from pathlib import Path

from .config import Settings
from .logs import get_logger

log = get_logger("demo")
README = """This is the demo storage of skao-staging.
Try:  curl -X POST 'http://127.0.0.1:8000/stage_data?method=local_copy&username=alice' \\
        -H 'Content-Type: application/json' \\
        -d '{"local_path_on_storage": "demo/hello.txt", "relative_path": "hello.txt"}'
"""
MEASUREMENT_SET = {
    "table.dat": 4096,
    "table.f0": 65536,
    "ANTENNA/table.dat": 2048,
    "ANTENNA/table.f0": 8192,
    "SPECTRAL_WINDOW/table.dat": 1024,
}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)  # archive files are read-only, so symlink_copy may link them


def ensure_demo_storage(settings: Settings) -> None:
    """Create ``./var/storage/demo`` (a text file, a binary file, a small Measurement Set) once."""
    root = Path(settings.storage_roots[0])
    demo = root / "demo"
    Path(settings.user_areas.split("{username}")[0] or ".").mkdir(parents=True, exist_ok=True)
    if demo.exists():
        return
    _write(demo / "hello.txt", README.encode())
    _write(demo / "visibilities.bin", os.urandom(4 * 1024 * 1024))
    for name, size in MEASUREMENT_SET.items():
        _write(demo / "observation.ms" / name, os.urandom(size))
    log.info("created the demo storage in %s", demo)
