"""Descriptor-level file operations for staging: verified copies, temporaries and publishing.

Nothing half-written is ever visible: data goes to a temporary name in the destination folder and
is published with ``link()`` (files) or ``rename()`` (folders), which never replace what is there.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import queue
import shutil
import stat
import threading
import time
from collections.abc import Callable

from .checksum import adler32
from .errors import DestinationAppeared, StagingError

TEMP_PREFIX = ".skao-staging-"
READ_ONLY_FILE_MODE = 0o444
_FICLONE = 0x40049409
_FALLBACK_ERRNOS = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}

ProgressCallback = Callable[[int], None]


def temp_name(job_id: int) -> str:
    """Temporary name of a job's output; one per job, so the next attempt finds and removes it."""
    return f"{TEMP_PREFIX}{job_id}.part"


def remove_entry(parent_fd: int, name: str) -> bool:
    """Remove a file or a whole folder below ``parent_fd`` (never following symlinks)."""
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)
    return True


def create_temp_file(parent_fd: int, name: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, 0o600, dir_fd=parent_fd)


def publish_file(parent_fd: int, temp: str, name: str) -> None:
    """Make ``temp`` visible as ``name`` unless ``name`` exists; the temporary is removed either way."""
    try:
        os.link(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
    except FileExistsError:
        raise DestinationAppeared(name) from None
    finally:
        os.unlink(temp, dir_fd=parent_fd)


def publish_dir(parent_fd: int, temp: str, name: str) -> None:
    """Rename a finished folder into place; refuse when something already stands there."""
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        raise DestinationAppeared(name)
    try:
        os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise DestinationAppeared(name) from exc
        raise


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
    if os.fstat(src_fd).st_size != size:
        raise StagingError("source_changed", "the source changed size during the copy")
    if verify and verifier.dest_adler != verifier.source_adler:
        raise StagingError("verification_failed", "the copy does not match its source checksum")
    return verifier.source_adler


def _throttle(done: int, started: float, rate: int) -> None:
    ahead = done / rate - (time.monotonic() - started)
    if ahead > 0:
        time.sleep(ahead)
