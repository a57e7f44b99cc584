"""Staging methods and the registry that maps names (and the seed's aliases) to them."""

from __future__ import annotations

from ..config import ALL_METHODS, Settings
from ..errors import StagingError
from .base import (
    EndedJob,
    HeldData,
    PublishedEntry,
    Released,
    ReleasePostponed,
    StagingMethod,
    TransferContext,
    TransferResult,
)
from .direct_download import DirectDownload
from .hard_link import HardLink
from .jupyter_copy import JupyterCopy
from .local_copy import LocalCopy

__all__ = [
    "EndedJob",
    "HeldData",
    "MethodRegistry",
    "PublishedEntry",
    "ReleasePostponed",
    "Released",
    "StagingMethod",
    "TransferContext",
    "TransferResult",
    "canonical_method",
]

_ALL: tuple[StagingMethod, ...] = (LocalCopy(), HardLink(), DirectDownload(), JupyterCopy())
_ALIASES = {alias: method.name for method in _ALL for alias in method.aliases}


def canonical_method(name: str | None) -> str | None:
    """A method's name for one of its aliases (the seed's ``direct_dowload``); other names as given."""
    return None if name is None else _ALIASES.get(name, name)


class MethodRegistry:
    """The methods a site enabled; looks up a name or alias and explains refusals."""

    def __init__(self, settings: Settings) -> None:
        unknown = sorted(set(settings.methods) - set(ALL_METHODS))
        if unknown:
            raise ValueError(f"STAGING_METHODS names unknown methods: {', '.join(unknown)}")
        self._by_name = {method.name: method for method in _ALL}
        self.unavailable = {
            method.name: problem
            for method in _ALL
            if method.name in settings.methods and (problem := method.availability_problem(settings))
        }
        self.enabled = [name for name in ALL_METHODS if name in settings.methods and name not in self.unavailable]

    def get(self, name: str | None) -> StagingMethod:
        canonical = canonical_method(name)
        if canonical in self.enabled:
            return self._by_name[canonical]
        if canonical in self._by_name:
            reason = self.unavailable.get(canonical, "it is not enabled at this site")
            raise StagingError(
                "method_not_enabled",
                f"method '{canonical}' cannot be used: {reason}",
                enabled_methods=self.enabled,
            )
        shown = "(none)" if name is None else f"'{name}'"
        raise StagingError("unknown_method", f"unknown method {shown}", enabled_methods=self.enabled)

    def of_job(self, name: str | None) -> StagingMethod | None:
        """The method that ran a job, enabled here or not (data it staged is released all the same)."""
        return self._by_name.get(canonical_method(name) or "")

    def describe(self) -> list[dict[str, object]]:
        return [
            {
                "name": name,
                "aliases": list(self._by_name[name].aliases),
                "description": self._by_name[name].description,
                "accepts_directories": self._by_name[name].accepts_directories,
            }
            for name in self.enabled
        ]
