"""Every descriptor-level operation on the user's side: walking and creating folders, temporaries, publishing.

Folders are walked from the user area with directory descriptors and ``O_NOFOLLOW``, so a folder
swapped for a symlink cannot redirect a write. Nothing half-written is ever visible: data goes to a
temporary name in the destination folder and is published with ``link()`` (files) or ``rename()``
(folders), which never replace what is there.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Literal

from .errors import DestinationAppeared, StagingError
from .paths import Destination, Owner

TEMP_PREFIX = ".skao-staging-"
DIR_MODE = 0o755
READ_ONLY_FILE_MODE = 0o444
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_name(job_id: int, attempt: int) -> str:
    """Temporary name of one attempt's output: an attempt writes and publishes only its own.

    A later attempt of the job knows the earlier names and removes what they left.
    """
    return f"{TEMP_PREFIX}{job_id}-{attempt}.part"


# -- folders ------------------------------------------------------------------------------------


def make_dir(parent_fd: int | None, name: str, mode: int = DIR_MODE, owner: Owner | None = None) -> None:
    """Create one folder below ``parent_fd`` (None: ``name`` is a path), given to ``owner`` when one is set.

    Raises FileExistsError when something stands there already.
    """
    os.mkdir(name, mode, dir_fd=parent_fd)
    if owner is not None:
        os.chown(name, *owner, dir_fd=parent_fd, follow_symlinks=False)


def open_dir_at(parent_fd: int, name: str, *, create: bool, owner: Owner | None = None, durable: bool = False) -> int:
    """Open (or create, owned by ``owner``) one folder below ``parent_fd`` without following a symlink.

    ``durable``: a folder created here has its entry in ``parent_fd`` flushed to disk.
    """
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
    with suppress(FileExistsError):  # another staging created it meanwhile
        make_dir(parent_fd, name, owner=owner)
        if durable:
            os.fsync(parent_fd)
    return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


@contextmanager
def open_parent(
    dest: Destination, *, create: bool = True, owner: Owner | None = None, durable: bool = False
) -> Iterator[int]:
    """Yield a descriptor of the destination's folder, walking from the user area with O_NOFOLLOW.

    Folders created on the way (the user area included) belong to ``owner`` when one is given;
    ``durable``: their entries are flushed to disk, so a power cut cannot lose the path to a result.
    """
    if create and not dest.area.exists():
        os.makedirs(dest.area.parent, mode=DIR_MODE, exist_ok=True)
        with suppress(FileExistsError):
            make_dir(None, str(dest.area), owner=owner)
            if durable:
                sync_path(dest.area.parent)
    fd = os.open(dest.area, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in dest.parts[:-1]:
            try:
                next_fd = open_dir_at(fd, part, create=create, owner=owner, durable=durable)
            except OSError as exc:
                raise _destination_error(fd, part, exc) from exc
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def sync_path(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries to disk."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)


def sync_filesystem(fd: int) -> None:
    """Flush every written file and folder of the filesystem holding ``fd`` (``syncfs``), in one call.

    A tree of thousands of small files is flushed this way instead of file by file: one journal
    commit instead of one per file, as ``sync -f`` does. Write-back errors are reported (Linux 5.8+).
    """
    if _libc.syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _destination_error(parent_fd: int, name: str, exc: OSError) -> Exception:
    """Explain why a folder of the destination path could not be opened."""
    try:
        is_link = stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
    except OSError:
        is_link = False
    if is_link or exc.errno == errno.ELOOP:
        return StagingError("unsafe_destination", "a folder on the destination path is a symbolic link")
    if exc.errno == errno.ENOTDIR:
        return StagingError("destination_blocked", "a file stands where the destination needs a folder")
    if exc.errno == errno.ENOENT:
        return StagingError("destination_not_found", "the destination folder does not exist")
    return exc


class DirCache:
    """Descriptors of the folders of a tree below a top descriptor, opened once each."""

    def __init__(self, stack: ExitStack, top_fd: int) -> None:
        self._stack = stack
        self._fds: dict[tuple[str, ...], int] = {(): top_fd}

    def fd(self, parts: tuple[str, ...]) -> int:
        if parts not in self._fds:
            parent = self.fd(parts[:-1])
            fd = open_dir_at(parent, parts[-1], create=False)
            self._stack.callback(os.close, fd)
            self._fds[parts] = fd
        return self._fds[parts]


def list_tree(dir_fd: int, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Walk an existing destination folder by descriptor: (parts, 'dir' | 'file' | 'other')."""
    with os.scandir(dir_fd) as listing:
        children = list(listing)
    for child in children:
        parts = (*prefix, child.name)
        if child.is_dir(follow_symlinks=False):
            yield parts, "dir"
            child_fd = open_dir_at(dir_fd, child.name, create=False)
            try:
                yield from list_tree(child_fd, parts)
            finally:
                os.close(child_fd)
        elif child.is_file(follow_symlinks=False):
            yield parts, "file"
        else:
            yield parts, "other"


# -- files --------------------------------------------------------------------------------------


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


FileState = Literal["removed", "changed", "replaced", "gone"]


def unlink_if_same(dir_fd: int, name: str, identity: str, size: int | None) -> FileState:
    """Remove ``name`` below ``dir_fd`` only if it is still the file ``identity`` names, unmodified.

    A symlink, a folder or another file standing there now (``replaced``), or the same file
    modified (``changed``), stays. The check and the unlink are two calls: a file put in its
    place between them would be removed, a window of microseconds that only its user can open.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "gone"
    unchanged = f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}" == identity and size in (None, st.st_size)
    if not (unchanged and stat.S_ISREG(st.st_mode)):
        same_inode = identity.startswith(f"{st.st_dev}:{st.st_ino}:")
        return "changed" if same_inode and stat.S_ISREG(st.st_mode) else "replaced"
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return "gone"
    return "removed"


def remove_empty_dir(dir_fd: int, name: str) -> bool:
    """Remove the folder ``name`` below ``dir_fd`` if it is empty (never a symlink); True when it is gone."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            return False
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def create_temp_file(parent_fd: int, name: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, 0o600, dir_fd=parent_fd)


def chmod_read_only(dir_fd: int, name: str) -> None:
    fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(fd, READ_ONLY_FILE_MODE)
    finally:
        os.close(fd)


def write_new_file(dest: Destination, chunks: Iterator[bytes], mode: int = READ_ONLY_FILE_MODE) -> None:
    """Write a file that must not exist yet (FileExistsError otherwise), creating its folders."""
    with open_parent(dest) as parent_fd:
        fd = os.open(
            dest.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd
        )
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)


# -- publishing ---------------------------------------------------------------------------------


def publish_file(parent_fd: int, temp: str, name: str, *, durable: bool = False) -> None:
    """Make ``temp`` visible as ``name`` unless ``name`` exists; the temporary is removed either way.

    ``durable``: the new entry is flushed to disk before this returns (the file itself must be already).
    """
    try:
        os.link(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
    except FileExistsError:
        raise DestinationAppeared(name) from None
    finally:
        os.unlink(temp, dir_fd=parent_fd)
    if durable:
        os.fsync(parent_fd)


def publish_dir(parent_fd: int, temp: str, name: str, *, durable: bool = False) -> None:
    """Rename a finished folder into place; refuse when something already stands there.

    ``durable``: the new entry is flushed to disk before this returns (the folder's content must be already).
    """
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
    if durable:
        os.fsync(parent_fd)
