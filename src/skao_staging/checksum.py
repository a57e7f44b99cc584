"""Checksums recorded for staged data: ``adler32:<8 hex>``, as Rucio and FTS3 record them.

adler32 comes from zlib-ng (SIMD, about 19 GB/s here against 3 GB/s for the standard library), so
verifying a copy costs little beside the copy itself. A folder's checksum is the adler32 of its
manifest: one line ``<relative path>\\t<size>\\t<adler32 hex>\\n`` per file, sorted by path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from zlib_ng import zlib_ng

PREFIX = "adler32:"
READ_CHUNK = 4 * 1024 * 1024


def adler32(data: bytes | bytearray | memoryview, value: int = 1) -> int:
    return zlib_ng.adler32(data, value)


def format_adler32(value: int) -> str:
    return f"{PREFIX}{value & 0xFFFFFFFF:08x}"


class Hash(Protocol):
    def update(self, data: memoryview, /) -> None: ...


def adler32_of_fd(fd: int, *also: Hash) -> int:
    """Checksum a whole open file with positional reads (the file offset is left alone).

    Each hash in ``also`` (e.g. a ``hashlib.sha256()``) is fed the same bytes in the same read.
    """
    buffer = memoryview(bytearray(READ_CHUNK))
    value, offset = 1, 0
    while count := os.preadv(fd, [buffer], offset):
        value = adler32(buffer[:count], value)
        for other in also:
            other.update(buffer[:count])
        offset += count
    return value


def adler32_of_file(path: Path, *also: Hash) -> int:
    """``adler32_of_fd`` of a file opened without following a final symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return adler32_of_fd(fd, *also)
    finally:
        os.close(fd)


def manifest_checksum(files: Iterable[tuple[str, int, int]]) -> str:
    """Checksum of a folder from ``(relative path, size, adler32)`` of each of its files."""
    value = 1
    for relative, size, file_adler in sorted(files):
        value = adler32(f"{relative}\t{size}\t{file_adler & 0xFFFFFFFF:08x}\n".encode(), value)
    return format_adler32(value)
