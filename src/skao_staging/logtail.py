"""Reading the service log: a bounded backlog and the lines added since, across rotations."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_LINE = 64 * 1024


def level_of(line: str) -> str | None:
    """The level of a record's first line (``<time> <LEVEL> <logger> <message>``); None for a continuation."""
    parts = line.split(" ", 2)
    return parts[1] if len(parts) > 1 and parts[1] in LEVELS else None


def keep(line: str, min_level: str | None, search: str | None) -> bool:
    level = level_of(line)
    if min_level and level and LEVELS.index(level) < LEVELS.index(min_level):
        return False
    return not search or search.lower() in line.lower()


def backlog(path: Path, lines: int, min_level: str | None = None, search: str | None = None) -> list[str]:
    """The last ``lines`` matching lines, read from the end of the file only (never all of it)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            start = max(0, size - max(lines, 1) * 400 - MAX_LINE)
            log.seek(start)
            text = log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    found = [line for line in text.split("\n")[1 if start else 0 :] if line and keep(line, min_level, search)]
    return list(deque(found, maxlen=lines))


@dataclass
class Follower:
    """Yields lines appended to a log file since the last call; starts at its end."""

    path: Path
    offset: int = 0
    inode: int | None = None
    partial: str = ""

    def __post_init__(self) -> None:
        try:
            st = self.path.stat()
            self.offset, self.inode = st.st_size, st.st_ino
        except FileNotFoundError:
            pass

    def new_lines(self) -> list[str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if st.st_ino != self.inode or st.st_size < self.offset:  # rotated: read the new file from its start
            self.offset, self.inode, self.partial = 0, st.st_ino, ""
        if st.st_size == self.offset:
            return []
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read(min(st.st_size - self.offset, 4 * 1024 * 1024))
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", "replace")
        *lines, self.partial = text.split("\n")
        return lines
