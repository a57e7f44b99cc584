"""The Rucio catalogue, as the service reads it: DIDs, their files, and their replicas at this site.

Calls go through the official client (``rucio-clients``) from worker threads, one client per
thread. A dataset's replicas are read in batches, several at once on a small pool of the
catalogue's own (a Rucio server answers each batch in time proportional to its files, and
deployments run many server workers). Rucio's exceptions become the service's codes: ``did_not_found``, ``not_at_site``,
``rucio_forbidden`` (the service's credentials refused) and ``rucio_unavailable``; no message ever
carries a credential.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .config import Settings
from .errors import StagingError
from .text import UNSAFE_CHARACTERS

T = TypeVar("T")
_SCOPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,24}")
MAX_NAME = 250  # Rucio's limit on a DID name
REPLICA_BATCH = 250  # files asked for in one list_replicas call


@dataclass(frozen=True)
class Did:
    """A data identifier, ``scope:name``."""

    scope: str
    name: str

    @classmethod
    def parse(cls, raw: str | None) -> Did:
        """A DID from the user's string, or 400 ``invalid_did``."""
        if not raw or ":" not in raw:
            raise StagingError("invalid_did", "a DID is 'scope:name'")
        scope, name = raw.split(":", 1)
        if not _SCOPE.fullmatch(scope):
            raise StagingError("invalid_did", "the DID's scope must be letters, digits, '.', '_' or '-'")
        if not name or len(name) > MAX_NAME or UNSAFE_CHARACTERS.search(name):
            raise StagingError("invalid_did", f"the DID's name must be 1-{MAX_NAME} printable characters")
        if name.startswith("/") or ".." in name.split("/"):
            raise StagingError("invalid_did", "the DID's name must not be a path that climbs ('..') or is absolute")
        return cls(scope, name)

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}"


@dataclass(frozen=True)
class Replica:
    """A file of the catalogue at this site: its PFN there, and what the catalogue says it holds."""

    did: Did
    pfn: str
    size: int
    adler32: int | None

    def pin(self) -> str:
        """The replica as a job records it (``from_pin`` reads it back)."""
        return json.dumps({"pfn": self.pfn, "bytes": self.size, "adler32": self.adler32}, separators=(",", ":"))

    @classmethod
    def from_pin(cls, did: Did, pin: str) -> Replica:
        fields = json.loads(pin)
        return cls(did, str(fields["pfn"]), int(fields["bytes"]), fields["adler32"])


@dataclass(frozen=True)
class DidSummary:
    """A DID as the web UI shows it before staging: its type, files, bytes, and files at this site."""

    did: Did
    type: str
    files: int
    bytes: int
    files_at_site: int


@dataclass(frozen=True)
class CatalogueFile:
    """A file of a dataset or container, and where it lands below the request's destination."""

    did: Did
    parts: tuple[str, ...]  # (name,) in a dataset; (dataset, name) in a container


class Catalogue:
    """The catalogue with the service's own account."""

    def __init__(self, settings: Settings) -> None:
        if not settings.rucio_url:
            raise StagingError("unsupported_source", "this site does not accept DIDs (no Rucio is configured)")
        self.settings = settings
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        if settings.rucio_token_file is not None:
            self._token_file = _TokenFile(settings.rucio_token_file)

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            with _rucio_errors():
                client = self._new_client()
            self._local.client = client
        if self.settings.rucio_token_file is not None:
            self._token_file.refresh(client)
        return client

    def _new_client(self) -> Any:
        from rucio.client import Client

        settings = self.settings
        common = {
            "rucio_host": settings.rucio_url,
            "auth_host": settings.rucio_auth_url or settings.rucio_url,
            "account": settings.rucio_account,
            "timeout": int(settings.rucio_timeout_seconds),
        }
        if settings.rucio_token_file is not None:
            # The client reads a bearer token file where the WLCG discovery says (BEARER_TOKEN_FILE)
            os.environ["BEARER_TOKEN_FILE"] = str(settings.rucio_token_file)
            return Client(**common, auth_type="oidc")
        password = settings.rucio_password.get_secret_value() if settings.rucio_password else None
        return Client(**common, auth_type="userpass", creds={"username": settings.rucio_username, "password": password})

    def _call(self, action: Callable[[Any], T]) -> T:
        with _rucio_errors():
            return action(self._client())

    def _replica_rows(self, batch: list[dict[str, str]]) -> Callable[[Any], list[dict[str, Any]]]:
        rse = self.settings.rucio_rse
        return lambda client: list(client.list_replicas(batch, schemes=["file"], rse_expression=rse))

    def _get_did(self, did: Did) -> dict[str, Any]:
        """The catalogue's record of a DID (its ``type``, and a file's ``bytes``); 404 ``did_not_found``."""
        found: dict[str, Any] = self._call(lambda client: client.get_did(did.scope, did.name))
        return found

    def did_type(self, did: Did) -> str:
        """``FILE``, ``DATASET`` or ``CONTAINER``; 404 ``did_not_found``."""
        return str(self._get_did(did)["type"]).upper()

    def files(self, did: Did, kind: str) -> list[CatalogueFile]:
        """The files of a dataset (``(name,)``) or of a container, recursively (``(dataset, name)``);
        ``kind`` is the DID's type, as ``did_type`` read it."""
        if kind == "FILE":
            return [CatalogueFile(did, (did.name,))]
        if kind == "DATASET":
            return [CatalogueFile(file_did, (file_did.name,)) for file_did in self._dataset_files(did)]
        found: list[CatalogueFile] = []
        for dataset in self._datasets_below(did, depth=0):
            found += [
                CatalogueFile(file_did, (dataset.name, file_did.name)) for file_did in self._dataset_files(dataset)
            ]
        return found

    def _dataset_files(self, dataset: Did) -> list[Did]:
        rows = self._call(lambda client: list(client.list_files(dataset.scope, dataset.name)))
        return [Did(row["scope"], row["name"]) for row in rows]

    def _datasets_below(self, container: Did, depth: int) -> Iterator[Did]:
        if depth > 16:
            raise StagingError("invalid_did", f"{container} nests containers more than 16 deep")
        content = self._call(lambda client: list(client.list_content(container.scope, container.name)))
        for child in content:
            child_did = Did(child["scope"], child["name"])
            if str(child["type"]).upper() == "DATASET":
                yield child_did
            elif str(child["type"]).upper() == "CONTAINER":
                yield from self._datasets_below(child_did, depth + 1)

    def search(self, scope: str, pattern: str, limit: int, offset: int) -> list[tuple[Did, str]]:
        """DIDs of ``scope`` whose name matches ``pattern`` (``*`` a wildcard), with their types; one page."""
        if not _SCOPE.fullmatch(scope) or UNSAFE_CHARACTERS.search(pattern) or len(pattern) > MAX_NAME:
            raise StagingError("invalid_did", "search a scope (letters, digits, '.', '_', '-') and a name pattern")

        def page(client: Any) -> list[tuple[Did, str]]:
            found = client.list_dids(scope, [{"name": pattern}], did_type="all", long=True)
            return [
                (Did(row["scope"], row["name"]), str(row["did_type"]).upper())
                for row in itertools.islice(found, offset, offset + limit)
            ]

        return self._call(page)

    def describe(self, did: Did) -> DidSummary:
        """What a DID holds and whether this site has it: files, bytes, and the files with a replica here."""
        record = self._get_did(did)
        kind = str(record["type"]).upper()
        rows = [record] if kind == "FILE" else self._call(lambda client: list(client.list_files(did.scope, did.name)))
        size = sum(int(row.get("bytes") or 0) for row in rows)
        # the same rule as staging: a file is here when _replica_of finds an available replica at the RSE
        rows_here = self._call(self._replica_rows([{"scope": did.scope, "name": did.name}]))
        here = sum(1 for row in rows_here if _replica_of(row) is not None)
        return DidSummary(did, kind, len(rows), size, here)

    def replica(self, did: Did) -> Replica:
        """The file's replica at this site (``file`` scheme); 404 ``did_not_found``, or ``not_at_site``
        naming where it is; a dataset or container is refused (``unsupported_source``)."""
        found = self.replicas([did])
        if did in found:
            return found[did]
        kind = self.did_type(did)  # did_not_found when the catalogue has no such DID
        if kind != "FILE":
            raise StagingError(
                "unsupported_source", f"{did} is a {kind.lower()}: stage it through POST /api/v1/jobs, which expands it"
            )
        elsewhere = self._call(
            lambda client: sorted(
                {site for row in client.list_replicas([{"scope": did.scope, "name": did.name}]) for site in row["rses"]}
            )
        )
        rse = self.settings.rucio_rse
        where = f"; it is at {', '.join(elsewhere)}" if elsewhere else "; no site holds a replica"
        raise StagingError("not_at_site", f"{did} has no replica at this site ({rse}){where}", rses=elsewhere)

    def request_replication(self, did: Did) -> str:
        """A rule of the service's account that brings ``did`` to this site's RSE: its id.

        An existing rule of the account for the DID and the RSE is reused (Rucio allows one).
        """
        settings = self.settings
        lifetime = settings.rucio_replication_lifetime_seconds or None

        def add_rule(client: Any) -> str:
            from rucio.common.exception import DuplicateRule

            try:
                created = client.add_replication_rule(
                    dids=[{"scope": did.scope, "name": did.name}],
                    copies=1,
                    rse_expression=settings.rucio_rse,
                    lifetime=lifetime,
                    comment="skao-staging: staging requested while not at this site",
                )
                return str(created[0])
            except DuplicateRule:
                for rule in client.list_did_rules(did.scope, did.name):
                    if rule["rse_expression"] == settings.rucio_rse and rule["account"] == client.account:
                        return str(rule["id"])
                raise

        return self._call(add_rule)

    def rule_state(self, rule_id: str) -> tuple[str, str | None]:
        """A rule's state (``OK``, ``REPLICATING``, ``STUCK``, ...) and its error, if any."""
        rule: dict[str, Any] = self._call(lambda client: client.get_replication_rule(rule_id))
        return str(rule["state"]).upper(), rule.get("error")

    def replicas(self, dids: list[Did]) -> dict[Did, Replica]:
        """The available replicas at this site of many files, asked in batches (one call per batch,
        up to ``rucio_parallel_requests`` at once)."""
        batches = [
            [{"scope": did.scope, "name": did.name} for did in dids[start : start + REPLICA_BATCH]]
            for start in range(0, len(dids), REPLICA_BATCH)
        ]
        read = self._call_batch
        answers = map(read, batches) if len(batches) < 2 else self._parallel().map(read, batches)
        found: dict[Did, Replica] = {}
        wanted = set(dids)
        for row in itertools.chain.from_iterable(answers):
            did, replica = Did(row["scope"], row["name"]), _replica_of(row)
            if did in wanted and replica is not None:  # a collection's rows name its files, not it
                found[did] = replica
        return found

    def close(self) -> None:
        """Stop the pool's threads (the process is stopping)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _call_batch(self, batch: list[dict[str, str]]) -> list[dict[str, Any]]:
        return self._call(self._replica_rows(batch))

    def _parallel(self) -> ThreadPoolExecutor:
        """The catalogue's pool (its threads keep their clients, so each signs in once)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.rucio_parallel_requests, "rucio-replicas")
            return self._pool


class _TokenFile:
    """The site's token file, read again into every client whenever it changed (the site refreshes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def refresh(self, client: Any) -> None:
        token = self._current()
        if token and client.auth_token != token:
            client.auth_token = token
            client.headers["X-Rucio-Auth-Token"] = token

    def _current(self) -> str:
        try:
            st = self.path.stat()
        except OSError:
            return self._token  # being replaced: keep the last one
        with self._lock:
            if (st.st_mtime_ns, st.st_ino) != self._stamp:
                self._token = self.path.read_text().strip()
                self._stamp = (st.st_mtime_ns, st.st_ino)
            return self._token


def _replica_of(row: dict[str, Any]) -> Replica | None:
    states = row.get("states") or {}
    for site, pfns in (row.get("rses") or {}).items():
        if pfns and states.get(site, "AVAILABLE") == "AVAILABLE":
            adler = row.get("adler32")
            return Replica(
                Did(row["scope"], row["name"]), pfns[0], int(row["bytes"]), int(adler, 16) if adler else None
            )
    return None


@contextmanager
def _rucio_errors() -> Iterator[None]:
    """Rucio's exceptions as the service's errors (the server's reason, never the credentials)."""
    from requests.exceptions import RequestException
    from rucio.common import exception as rucio

    try:
        yield
    except rucio.DataIdentifierNotFound as exc:
        raise StagingError("did_not_found", f"the catalogue has no such DID ({_reason(exc)})") from None
    except (rucio.CannotAuthenticate, rucio.AccessDenied) as exc:
        raise StagingError("rucio_forbidden", f"Rucio refused the service's account ({_reason(exc)})") from None
    except (rucio.ServiceUnavailable, rucio.RucioException, RequestException) as exc:
        raise StagingError("rucio_unavailable", f"Rucio cannot be reached or failed ({type(exc).__name__})") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "_message", "") or type(exc).__name__)[:200]
