"""The copy engine: small files in the calling thread, larger ones chunk by chunk with a verifier thread."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from skao_staging.copier import SMALL_FILE, copy_verified


@pytest.mark.parametrize("size", [0, 1, 70_000, SMALL_FILE, SMALL_FILE + 1, 3 * 65_536 + 5])
def test_a_copy_is_exact_and_returns_the_sources_adler32(size: int, tmp_path: Path) -> None:
    data = os.urandom(size)
    (tmp_path / "source").write_bytes(data)
    progress: list[int] = []
    src_fd = os.open(tmp_path / "source", os.O_RDONLY)
    dst_fd = os.open(tmp_path / "copy", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        adler = copy_verified(src_fd, dst_fd, chunk=65_536, verify=True, on_progress=progress.append)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert (tmp_path / "copy").read_bytes() == data
    assert adler == zlib.adler32(data) & 0xFFFFFFFF
    assert progress[-1] == size
