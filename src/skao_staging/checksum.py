"""Checksums recorded for staged data: ``adler32:<8 hex>``, as Rucio and FTS3 record them.

adler32 comes from zlib-ng (SIMD, about 19 GB/s here against 3 GB/s for the standard library), so
verifying a copy costs little beside the copy itself. A folder's checksum is the adler32 of its
manifest: one line ``<relative path>\\t<size>\\t<adler32 hex>\\n`` per file, sorted by path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from zlib_ng import zlib_ng

PREFIX = "adler32:"
READ_CHUNK = 4 * 1024 * 1024


def adler32(data: bytes | bytearray | memoryview, value: int = 1) -> int:
    return zlib_ng.adler32(data, value)


def format_adler32(value: int) -> str:
    return f"{PREFIX}{value & 0xFFFFFFFF:08x}"


def adler32_of_fd(fd: int) -> int:
    """Checksum a whole open file with positional reads (the file offset is left alone)."""
    buffer = memoryview(bytearray(READ_CHUNK))
    value, offset = 1, 0
    while count := os.preadv(fd, [buffer], offset):
        value = adler32(buffer[:count], value)
        offset += count
    return value


def manifest_checksum(files: Iterable[tuple[str, int, int]]) -> str:
    """Checksum of a folder from ``(relative path, size, adler32)`` of each of its files."""
    value = 1
    for relative, size, file_adler in sorted(files):
        value = adler32(f"{relative}\t{size}\t{file_adler & 0xFFFFFFFF:08x}\n".encode(), value)
    return format_adler32(value)
