"""A Rucio DID (``did``, ``scope:name``): the site's replica of a file, read where its RSE is mounted.

A file DID is one job. A dataset or container is expanded when the request is accepted
(``expand``) into one item per file, each a file DID landing at ``<relative_path>/<name>`` (a
dataset) or ``<relative_path>/<dataset>/<name>`` (a container). The replica's PFN is mapped to a
local path through ``STAGING_RUCIO_RSE_MOUNTS``; that path must lie inside a storage root and be
readable by the caller's groups, exactly as an archive path. The plan carries the catalogue's
size and adler32, which the copy is verified against, and pins the replica (PFN, size, adler32) to
the job, so that a worker running it asks the catalogue nothing: a file DID's content never changes
in Rucio, and the local checks (mount, root, groups, size on disk) are made again when it runs.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ..catalogue import Catalogue, Did, Replica
from ..errors import StagingError
from ..paths import StorageRoots
from .base import Source, SourcePlan


class RucioDid(Source):
    field = "did"

    def __init__(
        self,
        roots: StorageRoots,
        catalogue: Catalogue,
        mounts: dict[str, Path],
        group_scopes: dict[str, list[str]] | None = None,
    ) -> None:
        self.roots, self.catalogue = roots, catalogue
        self.mounts = sorted(mounts.items(), key=lambda mount: len(mount[0]), reverse=True)  # longest prefix first
        self.scope_groups: dict[str, set[str]] = {}
        self._known = _RecentReplicas()
        for group, scopes in (group_scopes or {}).items():
            for scope in scopes:
                self.scope_groups.setdefault(scope, set()).add(group)

    def check_scope(self, scope: str, groups: frozenset[str] | None) -> None:
        """A scope mapped to groups is staged only by their members (None: unrestricted, as admins)."""
        allowed = self.scope_groups.get(scope)
        if groups is not None and allowed is not None and not allowed & groups:
            raise StagingError("scope_forbidden", f"your groups may not stage DIDs of scope '{scope}'")

    def plan(self, raw: str | None, groups: frozenset[str] | None, pin: str | None = None) -> SourcePlan:
        did = Did.parse(raw)
        self.check_scope(did.scope, groups)
        replica = Replica.from_pin(did, pin) if pin else self._known.pop(did, None) or self.catalogue.replica(did)
        real = self.roots.resolve_readable(str(self.local_path(replica.pfn)), groups)
        try:
            size = os.stat(real).st_size
        except FileNotFoundError:
            raise StagingError("source_not_found", f"{did} is registered at this site but missing on disk") from None
        if size != replica.size:
            raise StagingError(
                "checksum_mismatch", f"{did} holds {size} bytes on disk; the catalogue says {replica.size}"
            )
        return SourcePlan.single_file(real, size, replica.adler32, pin=replica.pin())

    def local_path(self, pfn: str) -> Path:
        """Where a PFN of the site's RSE is mounted here; refused when no mount holds it."""
        for prefix, mount in self.mounts:
            if pfn.startswith(prefix):
                rest = pfn[len(prefix) :].lstrip("/")
                return Path(mount, rest)
        raise StagingError("source_outside_storage", "the replica's PFN lies outside every configured RSE mount")

    def expand(self, raw: str | None, groups: frozenset[str] | None = None) -> list[tuple[str, tuple[str, ...]]] | None:
        did = Did.parse(raw)
        self.check_scope(did.scope, groups)
        kind = self.catalogue.did_type(did)
        if kind == "FILE":
            return None
        members = self.catalogue.files(did, kind)
        # the members' replicas in a few calls: their plans (made right after, when each is checked) reuse them
        self._known.update(self.catalogue.replicas([member.did for member in members]))
        return [(str(member.did), member.parts) for member in members]


class _RecentReplicas:
    """Replicas just read in bulk by ``expand``, each used once by the plan of its member.

    Thread-safe and short-lived: an entry older than ``MAX_AGE`` seconds is read again.
    """

    MAX_AGE = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Did, tuple[float, Replica]] = {}

    def update(self, replicas: dict[Did, Replica]) -> None:
        now = time.monotonic()
        with self._lock:
            self._entries = {did: entry for did, entry in self._entries.items() if now - entry[0] < self.MAX_AGE}
            self._entries.update((did, (now, replica)) for did, replica in replicas.items())

    def pop(self, did: Did, default: None = None) -> Replica | None:
        with self._lock:
            entry = self._entries.pop(did, None)
        if entry is None or time.monotonic() - entry[0] >= self.MAX_AGE:
            return default
        return entry[1]
