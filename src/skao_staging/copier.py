"""The verified copy engine: a file copied as ``cp`` copies it, checksummed on the other core.

Uses a reflink or ``copy_file_range`` as ``cp`` does; the source is checksummed behind the copy,
and with verification on, the destination too. A small file is read once, written once and
checksummed in the calling thread.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .checksum import adler32
from .errors import StagingError
from .sources.base import PlannedFile

_FICLONE = 0x40049409
_FALLBACK_ERRNOS = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}

ProgressCallback = Callable[[int], None]
SMALL_FILE = 1024 * 1024  # copied and checksummed in the calling thread


class _Verifier(threading.Thread):
    """Checksums each copied chunk of source and destination on the other core, behind the copy.

    The source is read with ``pread`` (a source truncated by someone else must not SIGBUS the
    service); the destination is our own temporary file, so it is mapped without copying.
    """

    def __init__(self, src_fd: int, dst_fd: int, chunk: int, verify: bool) -> None:
        super().__init__(name="copy-verifier", daemon=True)
        self.src_fd, self.dst_fd, self.verify = src_fd, dst_fd, verify
        self.buffer = memoryview(bytearray(chunk))
        self.chunks: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self.source_adler = 1
        self.dest_adler = 1
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (item := self.chunks.get()) is not None:
                offset, count = item
                got = os.preadv(self.src_fd, [self.buffer[:count]], offset)
                self.source_adler = adler32(self.buffer[:got], self.source_adler)
                if self.verify:
                    self.dest_adler = self._adler_of_dest(offset, count)
        except BaseException as exc:  # reported to the copying thread
            self.error = exc
            while self.chunks.get() is not None:
                pass

    def _adler_of_dest(self, offset: int, count: int) -> int:
        skew = offset % mmap.ALLOCATIONGRANULARITY  # copy_file_range may return short counts
        flags = mmap.MAP_SHARED | mmap.MAP_POPULATE  # map the pages at once, not fault by fault
        with mmap.mmap(self.dst_fd, count + skew, flags=flags, prot=mmap.PROT_READ, offset=offset - skew) as mapped:
            view = memoryview(mapped)
            try:
                return adler32(view[skew:], self.dest_adler)
            finally:
                view.release()


def _copy_chunk(src_fd: int, dst_fd: int, offset: int, count: int, fast: list[bool]) -> int:
    """Copy up to ``count`` bytes at ``offset`` in the kernel when it can, else through a buffer."""
    if fast[0]:
        try:
            return os.copy_file_range(src_fd, dst_fd, count, offset, offset)
        except OSError as exc:
            if exc.errno not in _FALLBACK_ERRNOS:
                raise
            fast[0] = False
    data = os.pread(src_fd, count, offset)
    written = 0
    while written < len(data):
        written += os.pwrite(dst_fd, data[written:], offset + written)
    return len(data)


def _try_reflink(src_fd: int, dst_fd: int) -> bool:
    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
    except OSError:
        return False
    return True


def copy_verified(
    src_fd: int,
    dst_fd: int,
    *,
    chunk: int,
    verify: bool,
    on_progress: ProgressCallback,
    max_bytes_per_second: int = 0,
) -> int:
    """Copy an open source into an empty, open (read-write) destination; return the adler32.

    Uses a reflink or ``copy_file_range`` as ``cp`` does. With ``verify``, the destination is
    checksummed too and a mismatch raises ``StagingError``.
    """
    size = os.fstat(src_fd).st_size
    if size <= SMALL_FILE and not max_bytes_per_second:
        adler = _copy_small(src_fd, dst_fd, size, verify)
        on_progress(size)
    else:
        adler = _copy_large(src_fd, dst_fd, size, chunk, verify, on_progress, max_bytes_per_second)
    if os.fstat(src_fd).st_size != size:
        raise StagingError("source_changed", "the source changed size during the copy")
    return adler


def _copy_small(src_fd: int, dst_fd: int, size: int, verify: bool) -> int:
    """A small file in one read and one write, checksummed in this thread (a verifier thread costs
    more than the copy); with ``verify``, the destination is read back and compared."""
    data = os.pread(src_fd, size, 0)
    if len(data) != size:
        raise StagingError("source_changed", "the source became shorter during the copy")
    view, written = memoryview(data), 0
    while written < size:
        written += os.pwrite(dst_fd, view[written:], written)
    source_adler = adler32(data)
    if verify and adler32(os.pread(dst_fd, size + 1, 0)) != source_adler:
        raise StagingError("verification_failed", "the copy does not match its source checksum")
    return source_adler


def _copy_large(
    src_fd: int,
    dst_fd: int,
    size: int,
    chunk: int,
    verify: bool,
    on_progress: ProgressCallback,
    max_bytes_per_second: int,
) -> int:
    """A file copied chunk by chunk in the kernel, checksummed on the other core behind the copy."""
    if max_bytes_per_second:
        chunk = max(64 * 1024, min(chunk, max_bytes_per_second // 4))
    verifier = _Verifier(src_fd, dst_fd, chunk, verify)
    verifier.start()
    try:
        reflinked = size > 0 and _try_reflink(src_fd, dst_fd)
        fast, offset, started = [True], 0, time.monotonic()
        while offset < size:
            count = min(chunk, size - offset)
            if not reflinked:
                count = _copy_chunk(src_fd, dst_fd, offset, count, fast)
                if count == 0:
                    raise StagingError("source_changed", "the source became shorter during the copy")
            verifier.chunks.put((offset, count))
            offset += count
            on_progress(offset)
            if max_bytes_per_second:
                _throttle(offset, started, max_bytes_per_second)
    finally:
        verifier.chunks.put(None)
        verifier.join()
    if verifier.error is not None:
        raise verifier.error
    if verify and verifier.dest_adler != verifier.source_adler:
        raise StagingError("verification_failed", "the copy does not match its source checksum")
    return verifier.source_adler


def _version(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_unchanged(before: os.stat_result, src_fd: int, path: Path) -> None:
    """Raise ``source_changed`` when the open source was written to since ``before``, or ``path`` names
    another file now: what was read may mix two versions, so it must not be published."""
    if _version(os.fstat(src_fd)) != _version(before):
        raise StagingError("source_changed", "the source was modified during the copy")
    try:
        named = os.stat(path)
    except FileNotFoundError:
        raise StagingError("source_changed", "the source was removed during the copy") from None
    if _version(named) != _version(before):
        raise StagingError("source_changed", "the source was replaced during the copy")


def _throttle(done: int, started: float, rate: int) -> None:
    ahead = done / rate - (time.monotonic() - started)
    if ahead > 0:
        time.sleep(ahead)


def check_against_catalogue(source: PlannedFile, adler32: int) -> None:
    """A file whose source vouches for a checksum (a Rucio replica) must have exactly it: a corrupt
    replica fails with ``checksum_mismatch`` and nothing is published."""
    if source.expected_adler32 is not None and adler32 != source.expected_adler32:
        raise StagingError(
            "checksum_mismatch",
            f"the replica's adler32 is {adler32:08x}; the catalogue records {source.expected_adler32:08x}",
        )
