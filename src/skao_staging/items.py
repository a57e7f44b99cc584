"""One thing a caller asked to stage, as one frozen value from the route to the job record.

The method name is put in its canonical form here, once (the seed's aliases become the method's name).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .db import StagingJob
from .methods import canonical_method

MAX_RECORDED_TEXT = 8192


@dataclass(frozen=True)
class StageItem:
    method: str | None
    username: str | None
    local_path_on_storage: str | None
    relative_path: str | None
    did: str | None = None  # a Rucio DID instead of an archive path
    replicate: str | None = None  # not at this site: the DID to replicate here (this one, or its dataset)
    lifetime: str | None = None  # as asked (ISO 8601 duration or seconds); None: the site's default

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", canonical_method(self.method))

    def for_user(self, username: str | None) -> StageItem:
        return replace(self, username=username)

    def record(self) -> dict[str, Any]:
        """The item as job columns; raw user input made storable (valid UTF-8 without NUL, cut to the column's size)."""
        columns = StagingJob.__table__.columns
        return clip_for_record({item.name: getattr(self, item.name) for item in fields(self) if item.name in columns})


def storable(text: str) -> str:
    """Raw user text as every database stores it: valid UTF-8 and no NUL (PostgreSQL's text holds none)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def clip_for_record(values: dict[str, Any]) -> dict[str, Any]:
    clipped: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            value = storable(value)
            limit = getattr(StagingJob.__table__.c[key].type, "length", None) or MAX_RECORDED_TEXT
            value = value if len(value) <= limit else value[: limit - 1] + "…"
        clipped[key] = value
    return clipped
