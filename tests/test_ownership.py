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


@pytest.mark.parametrize(
    ("source_owner", "mode", "linked"),
    [
        ((4242, 4242), 0o644, True),  # the archive's account writes it; the result's owner cannot
        ((4242, 4242), 0o664, True),  # a group the result's owner is not in
        ((4242, 1001), 0o664, False),  # the result's group may write it
        ((4242, 4242), 0o646, False),  # anyone may write it
        ((1000, 4242), 0o644, False),  # the result's owner owns it, with u+w
        ((1000, 4242), 0o444, True),
    ],
)
def test_hard_links_are_refused_only_when_the_results_owner_could_write_the_archive_file(
    tmp_path: Path, source_owner: tuple[int, int], mode: int, linked: bool
) -> None:
    """The staged result belongs to uid 1000, gid 1001 (STAGING_OWNER_UID/GID): a hard link is refused
    (409 source_writable) only when that owner could write the shared inode through it."""
    server, service = live(tmp_path, owner_uid=1000, owner_gid=1001)
    source = service.write_source("archive.bin", b"archive", mode=mode)
    os.chown(source, *source_owner)
    with server:
        response = service.stage("symlink_copy", "una", "archive.bin", "linked.bin")
    if linked:
        assert response.status_code == 200, response.text
        assert response.json()["read_only"] is True
        assert (service.user_area("una") / "linked.bin").stat().st_ino == source.stat().st_ino
    else:
        assert response.status_code == 409 and response.json()["code"] == "source_writable", response.text
    assert (source.stat().st_mode & 0o777, (source.stat().st_uid, source.stat().st_gid)) == (mode, source_owner)
