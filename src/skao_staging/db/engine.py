"""Engine and sessions for SQLite (embedded default), MySQL/MariaDB (the seed's database) and PostgreSQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text

READ_ONLY = "skao_read_only"  # execution option of ``Database.reading`` connections


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # a reader: in WAL mode it never waits for the writer
            return
        # Take the write lock at BEGIN: a deferred transaction that later writes can fail with
        # SQLITE_BUSY at once, without waiting, when another writer committed in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # READ COMMITTED: under MySQL/MariaDB's default REPEATABLE READ, claims (SELECT ... FOR UPDATE
    # SKIP LOCKED) take gap locks on the status index that deadlock with inserts of new jobs.
    return create_engine(
        url, pool_pre_ping=True, pool_recycle=3600, pool_size=10, max_overflow=20, isolation_level="READ COMMITTED"
    )


class Database:
    """One engine, and transactions on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name  # "sqlite", "mysql" (MariaDB too) or "postgresql"
        self.is_sqlite = self.dialect == "sqlite"
        self.notifies = self.dialect == "postgresql"  # LISTEN/NOTIFY carries wake-ups across processes
        # SQLite has one writer at a time. Threads of this process take turns here rather than in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms when a lock is taken.
        self._sqlite_turn: AbstractContextManager[Any] = threading.Lock() if self.is_sqlite else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction that commits on success and rolls back on error."""
        with self._sqlite_turn, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection in a transaction that only reads. On SQLite it neither takes the write lock
        nor waits for this process's writers: a GET never holds up a worker (WAL readers run beside
        the writer)."""
        with self.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                yield connection

    def announce(self, connection: Connection, channel: str, payload: str = "") -> None:
        """Notify the listening processes of ``channel`` when ``connection``'s transaction commits
        (PostgreSQL's NOTIFY; elsewhere nothing: other processes poll, see ``wakeups``)."""
        if self.notifies:
            connection.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
