"""How long staged data is kept: a request's ``lifetime``, checked against the site's rules.

A lifetime is an ISO 8601 duration (``P14D``, ``PT12H``) or a number of seconds; ``0`` keeps the
data until it is released, which only admins may ask for unless the site allows it to everyone.
Parsing is pydantic's (the same rules as the settings' durations).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import TypeAdapter, ValidationError

from .auth import Identity
from .config import Settings
from .errors import StagingError

_DURATION = TypeAdapter(timedelta)
_SECONDS = re.compile(r"-?[0-9]+(\.[0-9]+)?")
UNLIMITED = 0  # lifetime_seconds of data kept until it is released


def parse_lifetime(raw: str | int | None) -> timedelta | None:
    """``raw`` as a duration (None: not given); ``invalid_lifetime`` when it is not one."""
    if raw is None:
        return None
    value: str | int | float = raw.strip() if isinstance(raw, str) else raw
    if isinstance(value, str) and _SECONDS.fullmatch(value):  # a query parameter's seconds arrive as text
        value = float(value)
    try:
        lifetime = _DURATION.validate_python(value)
    except ValidationError:
        raise StagingError(
            "invalid_lifetime", f"'{raw}' is neither an ISO 8601 duration (such as P14D) nor seconds"
        ) from None
    if lifetime < timedelta(0):
        raise StagingError("invalid_lifetime", "a lifetime is not negative")
    return lifetime


def lifetime_seconds(raw: str | int | None, settings: Settings, caller: Identity) -> int:
    """The lifetime, in whole seconds, of what a request stages (``UNLIMITED``: until released)."""
    lifetime = parse_lifetime(raw)
    if lifetime is None:
        lifetime = settings.default_lifetime
    seconds = int(lifetime.total_seconds())
    if seconds == UNLIMITED:
        if not (settings.allow_unlimited_lifetime or caller.may_administer):
            raise StagingError(
                "lifetime_not_allowed", "keeping data until it is released (lifetime 0) is for administrators"
            )
        return UNLIMITED
    if lifetime > settings.max_lifetime:
        limit = int(settings.max_lifetime.total_seconds())
        raise StagingError("invalid_lifetime", f"a lifetime is at most {limit} seconds at this site")
    return max(seconds, 1)


def expiry(published: datetime, seconds: int | None) -> datetime | None:
    """When data published at ``published`` with a lifetime of ``seconds`` expires (None: never)."""
    if not seconds:
        return None
    return published + timedelta(seconds=seconds)
