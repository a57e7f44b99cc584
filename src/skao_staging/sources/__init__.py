"""Source kinds: what a request may name as the data to stage.

A new kind is one module beside ``archive.py`` (a ``Source`` subclass) and one line in
``Sources.of_site``; the request field it reads is named by its ``field``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..catalogue import Catalogue
from ..config import Settings
from ..errors import StagingError
from ..paths import StorageRoots
from .archive import ArchivePath
from .base import PlannedFile, Source, SourcePlan
from .rucio_did import RucioDid

__all__ = ["PlannedFile", "Source", "SourcePlan", "Sources"]


class Sources:
    """The source kinds of this site, looked up by the field a request fills."""

    def __init__(self, kinds: Sequence[Source]) -> None:
        self._kinds = list(kinds)

    @classmethod
    def of_site(cls, roots: StorageRoots, settings: Settings | None = None) -> Sources:
        """The kinds this site offers (the first is the default when a request names none)."""
        kinds: list[Source] = [ArchivePath(roots)]
        if settings is not None and settings.rucio_url:
            catalogue = Catalogue(settings)
            kinds.append(RucioDid(roots, catalogue, settings.rucio_rse_mounts, settings.group_rucio_scopes))
        return cls(kinds)

    @property
    def fields(self) -> list[str]:
        return [kind.field for kind in self._kinds]

    @property
    def has_dids(self) -> bool:
        return any(isinstance(kind, RucioDid) for kind in self._kinds)

    def dids(self) -> RucioDid:
        """The DID kind, for the catalogue's own verbs (search, describe); refused when none is configured."""
        for kind in self._kinds:
            if isinstance(kind, RucioDid):
                return kind
        raise StagingError("unsupported_source", "this site does not accept DIDs (no Rucio is configured)")

    def of(self, record: object) -> tuple[Source, str | None]:
        """The kind whose field ``record`` (a request item or a job) fills, with its string.

        The archive path is the default, so a record that names no source is refused by its checks.
        """
        if getattr(record, "did", None) is not None and "did" not in self.fields:
            raise StagingError("unsupported_source", "this site does not accept DIDs (no Rucio is configured)")
        filled = [kind for kind in self._kinds if getattr(record, kind.field, None) is not None]
        if len(filled) > 1:
            names = " or ".join(kind.field for kind in self._kinds)
            raise StagingError("invalid_request", f"give exactly one source: {names}")
        kind = filled[0] if filled else self._kinds[0]
        return kind, getattr(record, kind.field, None)
