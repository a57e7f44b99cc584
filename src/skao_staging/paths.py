"""The only place where user strings become filesystem paths.

Sources are confined to the storage roots (symlinks are followed only while they stay inside one)
and to the roots the caller's groups may read; destinations to the user's area (``fsops`` then walks
its folders by descriptor, never following a symlink).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import StagingError
from .text import UNSAFE_CHARACTERS

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


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
    if UNSAFE_CHARACTERS.search(raw):
        raise StagingError("invalid_path", f"{what} contains a control or bidirectional formatting character")
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
    """Whether ``path`` is ``root`` or below it (both absolute and normalised), by their components."""
    return path.parts[: len(root.parts)] == root.parts


class StorageRoots:
    """The configured archive folders, canonicalised once, and which groups may read which of them.

    Roots named in ``group_roots`` (group -> folders) are readable by members of the groups mapped to
    them; the rest of the storage is open to everyone.
    """

    def __init__(self, roots: Sequence[Path], group_roots: Mapping[str, Sequence[Path]] | None = None) -> None:
        self.configured = [Path(os.path.abspath(root)) for root in roots]
        self.real = [Path(os.path.realpath(root)) for root in roots]
        self.guarded = [
            (group, Path(os.path.realpath(root))) for group, folders in (group_roots or {}).items() for root in folders
        ]

    def readable_by(self, real_path: Path, groups: frozenset[str] | None) -> bool:
        """Whether a caller in ``groups`` (None: unrestricted) may read ``real_path``."""
        if groups is None:
            return True
        guards = [group for group, root in self.guarded if is_within(real_path, root)]
        return not guards or any(group in groups for group in guards)

    def resolve_readable(self, raw: str | None, groups: frozenset[str] | None) -> Path:
        """``resolve_source``, refused (``source_forbidden``) when the caller's groups may not read it."""
        real = self.resolve_source(raw)
        if not self.readable_by(real, groups):
            raise StagingError("source_forbidden", f"your groups may not read '{raw}'")
        return real

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


def user_area(template: str, username: str) -> Path:
    return Path(os.path.abspath(template.replace("{username}", validate_username(username))))


@dataclass(frozen=True)
class Destination:
    """Where a staging lands: a user's area and the validated components below it."""

    area: Path
    parts: tuple[str, ...]

    @cached_property
    def path(self) -> Path:
        return self.area.joinpath(*self.parts)

    @property
    def name(self) -> str:
        return self.parts[-1]


def resolve_destination(template: str, username: str, relative_path: str | None) -> Destination:
    return Destination(user_area(template, username), validate_relative_path(relative_path))


def jupyter_home(template: str, username: str, parts: tuple[str, ...]) -> Destination:
    """Where a staged item lies in the user's Jupyter home, when the homes are mounted into this service."""
    return Destination(user_area(template, username), parts)


Owner = tuple[int, int]  # (uid, gid) for os.chown; -1 leaves one of them unchanged


def owner_tuple(uid: int | None, gid: int | None) -> Owner | None:
    """(uid, gid) for os.chown (-1 for one not set), or None when neither is: the service's own."""
    if uid is None and gid is None:
        return None
    return (-1 if uid is None else uid, -1 if gid is None else gid)
