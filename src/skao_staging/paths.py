"""The only place where user strings become filesystem paths.

Sources are confined to the storage roots (symlinks are followed only while they stay inside one);
destinations to the user's area, whose folders are walked and created with directory file
descriptors and ``O_NOFOLLOW``, so a folder swapped for a symlink cannot redirect a write.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import StagingError

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
DIR_MODE = 0o755
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def validate_username(username: str | None) -> str:
    if not username or not USERNAME_PATTERN.fullmatch(username):
        raise StagingError(
            "invalid_username",
            "username must be 1-64 characters of letters, digits, '.', '_' or '-', and must not start with '.' or '-'",
        )
    return username


def _check_text(raw: str | None, what: str) -> str:
    if raw is None or raw == "":
        raise StagingError("invalid_path", f"{what} is required")
    if "\x00" in raw:
        raise StagingError("invalid_path", f"{what} contains a NUL character")
    if _CONTROL_CHARS.search(raw):
        raise StagingError("invalid_path", f"{what} contains a control character")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise StagingError("invalid_path", f"{what} is longer than {MAX_PATH_BYTES} bytes")
    return raw


def _components(raw: str, what: str) -> tuple[str, ...]:
    parts = tuple(part for part in raw.split("/") if part not in ("", "."))
    if ".." in parts:
        raise StagingError("invalid_path", f"{what} must not contain '..'")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise StagingError("invalid_path", f"{what} has a name longer than {MAX_NAME_BYTES} bytes")
    return parts


def validate_relative_path(raw: str | None) -> tuple[str, ...]:
    """Split a destination path into safe components: relative, no '..', no NUL, not empty."""
    text = _check_text(raw, "relative_path")
    if text.startswith("/"):
        raise StagingError("invalid_path", "relative_path must be relative to the user area")
    parts = _components(text, "relative_path")
    if not parts:
        raise StagingError("invalid_path", "relative_path must name a file or folder")
    return parts


def is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class StorageRoots:
    """The configured archive folders, canonicalised once."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.configured = [Path(os.path.abspath(root)) for root in roots]
        self.real = [Path(os.path.realpath(root)) for root in roots]

    @staticmethod
    def readable_by(real_path: Path, groups: frozenset[str] | None, mapping: dict[str, list[Path]]) -> bool:
        """Whether a caller in ``groups`` (None: unrestricted) may read ``real_path``.

        Roots named in ``mapping`` are readable by members of the groups mapped to them; the rest
        of the storage is open to everyone.
        """
        if groups is None:
            return True
        guards = [
            group
            for group, roots in mapping.items()
            for root in roots
            if is_within(real_path, Path(os.path.realpath(root)))
        ]
        return not guards or any(group in groups for group in guards)

    def contains(self, real_path: Path) -> bool:
        return any(is_within(real_path, root) for root in self.real)

    def source_path(self, raw: str | None) -> Path:
        """``local_path_on_storage`` as an absolute path below a root, before symlinks are resolved."""
        text = _check_text(raw, "local_path_on_storage")
        parts = _components(text, "local_path_on_storage")
        if not text.startswith("/"):
            return self.configured[0].joinpath(*parts)
        candidate = Path("/", *parts)
        if not any(is_within(candidate, root) for root in self.configured + self.real):
            raise StagingError("source_outside_storage", f"'{text}' is not inside a storage root")
        return candidate

    def resolve_source(self, raw: str | None) -> Path:
        """Map ``local_path_on_storage`` to a real path inside a storage root that exists."""
        candidate = self.source_path(raw)
        text = str(raw)
        real = Path(os.path.realpath(candidate))
        if not self.contains(real):
            raise StagingError("source_outside_storage", f"'{text}' leads outside the storage roots")
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:
            raise StagingError("source_not_found", f"source '{text}' does not exist") from None
        except OSError:
            raise StagingError("source_not_found", f"source '{text}' cannot be read") from None
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise StagingError("unsupported_source", f"source '{text}' is neither a file nor a folder")
        return real


@dataclass(frozen=True)
class SourceEntry:
    """One file or folder of a source tree, by its path relative to the tree's top."""

    parts: tuple[str, ...]
    real: Path
    is_dir: bool
    size: int


def walk_source(top: Path, roots: StorageRoots) -> list[SourceEntry]:
    """List a source folder depth-first (folders before their content); symlinks must stay in storage."""
    entries: list[SourceEntry] = []
    seen_dirs: set[tuple[int, int]] = set()

    def visit(folder: Path, prefix: tuple[str, ...]) -> None:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen_dirs:
            raise StagingError("unsupported_source", "the source folder contains a symlink loop")
        seen_dirs.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as listing:
            children = sorted(listing, key=lambda entry: entry.name)
        for child in children:
            real = Path(os.path.realpath(child.path)) if child.is_symlink() else Path(child.path)
            if not roots.contains(real):
                raise StagingError("source_outside_storage", "a symlink in the source folder leads outside storage")
            child_stat = os.stat(real)
            parts = (*prefix, child.name)
            if stat.S_ISDIR(child_stat.st_mode):
                entries.append(SourceEntry(parts, real, True, 0))
                visit(real, parts)
            elif stat.S_ISREG(child_stat.st_mode):
                entries.append(SourceEntry(parts, real, False, child_stat.st_size))
            else:
                raise StagingError("unsupported_source", "the source folder holds a special file")

    visit(top, ())
    return entries


def user_area(template: str, username: str) -> Path:
    return Path(os.path.abspath(template.replace("{username}", validate_username(username))))


@dataclass(frozen=True)
class Destination:
    """Where a staging lands: a user's area and the validated components below it."""

    area: Path
    parts: tuple[str, ...]

    @property
    def path(self) -> Path:
        return self.area.joinpath(*self.parts)

    @property
    def name(self) -> str:
        return self.parts[-1]


def resolve_destination(template: str, username: str, relative_path: str | None) -> Destination:
    return Destination(user_area(template, username), validate_relative_path(relative_path))


Owner = tuple[int, int]  # (uid, gid) for os.chown; -1 leaves one of them unchanged


def open_dir_at(parent_fd: int, name: str, *, create: bool, owner: Owner | None = None) -> int:
    """Open (or create, owned by ``owner``) one folder below ``parent_fd`` without following a symlink."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
    try:
        os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
    except FileExistsError:
        pass  # another staging created it meanwhile
    else:
        if owner is not None:
            os.chown(name, *owner, dir_fd=parent_fd, follow_symlinks=False)
    return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


@contextmanager
def open_parent(dest: Destination, *, create: bool = True, owner: Owner | None = None) -> Iterator[int]:
    """Yield a descriptor of the destination's folder, walking from the user area with O_NOFOLLOW.

    Folders created on the way (the user area included) belong to ``owner`` when one is given.
    """
    if create and not dest.area.exists():
        os.makedirs(dest.area, mode=DIR_MODE, exist_ok=True)
        if owner is not None:
            os.chown(dest.area, *owner, follow_symlinks=False)
    fd = os.open(dest.area, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in dest.parts[:-1]:
            try:
                next_fd = open_dir_at(fd, part, create=create, owner=owner)
            except OSError as exc:
                raise _destination_error(fd, part, exc) from exc
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


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
