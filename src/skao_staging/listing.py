"""Read-only listing of the storage roots, for the frontend's source picker.

A folder is resolved exactly as an archive source is (``StorageRoots.resolve_readable``), so the
picker shows nothing a staging request could not read: entries whose symlinks lead outside the
storage and folders the caller's groups may not read are left out.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from .paths import StorageRoots

EntryType = Literal["file", "folder"]


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # usable as local_path_on_storage
    type: EntryType
    size: int | None
    modified: datetime | None


@dataclass(frozen=True)
class Listing:
    path: str  # "" for the list of storage roots
    parent: str | None
    entries: list[Entry]
    truncated: bool


def _modified(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def list_roots(roots: StorageRoots, groups: frozenset[str] | None) -> Listing:
    entries = [
        Entry(str(root), str(root), "folder", None, _modified(os.stat(real)))
        for root, real in zip(roots.configured, roots.real, strict=True)
        if real.is_dir() and roots.readable_by(real, groups)
    ]
    return Listing("", None, entries, False)


def list_path(roots: StorageRoots, raw: str, groups: frozenset[str] | None, limit: int) -> Listing:
    """A folder's entries (folders first, then by name), or a file as its own single entry."""
    real = roots.resolve_readable(raw, groups)
    shown = str(roots.source_path(raw))  # as the user names it: below a configured root, unresolved
    parent = _parent_of(roots, shown)
    st = os.stat(real)
    if not stat.S_ISDIR(st.st_mode):
        entry = Entry(os.path.basename(shown), shown, "file", st.st_size, _modified(st))
        return Listing(shown, parent, [entry], False)
    entries: list[Entry] = []
    truncated = False
    with os.scandir(real) as listing:
        for child in sorted(listing, key=lambda item: item.name):
            found = _entry(roots, child, shown, groups)
            if found is None:
                continue
            if len(entries) == limit:
                truncated = True
                break
            entries.append(found)
    entries.sort(key=lambda item: (item.type != "folder", item.name))
    return Listing(shown, parent, entries, truncated)


def _parent_of(roots: StorageRoots, shown: str) -> str | None:
    """The folder above, or "" (the list of roots) at a root."""
    path = Path(shown)
    if path in roots.configured or path in roots.real:
        return ""
    return str(path.parent)


def _entry(
    roots: StorageRoots,
    child: os.DirEntry[str],
    folder: str,
    groups: frozenset[str] | None,
) -> Entry | None:
    try:
        real = Path(os.path.realpath(child.path)) if child.is_symlink() else Path(child.path)
        if not roots.contains(real):
            return None
        st = os.stat(real)
    except OSError:
        return None
    path = f"{folder.rstrip('/')}/{child.name}"
    if stat.S_ISDIR(st.st_mode):
        if not roots.readable_by(real, groups):
            return None
        return Entry(child.name, path, "folder", None, _modified(st))
    if stat.S_ISREG(st.st_mode):
        return Entry(child.name, path, "file", st.st_size, _modified(st))
    return None
