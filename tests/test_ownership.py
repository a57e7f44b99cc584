"""Staged files and the folders the service creates belong to the user (fixed ids; claims: test_auth)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import live_service as live

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def test_fixed_owner(tmp_path: Path) -> None:
    server, service = live(tmp_path, owner_uid=1000, owner_gid=1001)
    service.write_source("f.bin", b"f")
    service.write_source("ds/sub/g.bin", b"g")
    service.write_source("linked.bin", b"l")
    with server:
        assert service.stage("local_copy", "una", "f.bin", "deep/er/f.bin").status_code == 200
        assert service.stage("local_copy", "una", "ds", "ds").status_code == 200
        assert service.stage("symlink_copy", "una", "linked.bin", "linked.bin").status_code == 200
    area = service.user_area("una")
    for path in (
        area,
        area / "deep",
        area / "deep" / "er",
        area / "deep" / "er" / "f.bin",
        area / "ds",
        area / "ds" / "sub",
        area / "ds" / "sub" / "g.bin",
    ):
        assert (path.stat().st_uid, path.stat().st_gid) == (1000, 1001), path
    assert (area / "linked.bin").stat().st_uid == 0, "a hard link keeps the archive's owner"
    assert (service.storage / "f.bin").stat().st_uid == 0, "sources are never changed"
