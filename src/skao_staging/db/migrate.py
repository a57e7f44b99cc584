"""Alembic migrations run from code (``skao-staging migrate``), with no alembic.ini to ship."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from ..logs import get_logger
from .engine import Database

log = get_logger("db")

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.engine
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(_config(db), revision)


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaNotCurrent(RuntimeError):
    pass


def prepare_database(db: Database) -> None:
    """Apply migrations on SQLite; elsewhere require ``skao-staging migrate`` to have run."""
    if db.is_sqlite:
        upgrade(db)
        return
    current, head = current_revision(db), head_revision(db)
    if current != head:
        raise SchemaNotCurrent(
            f"the database schema is at {current or 'nothing'}, not {head}: run 'skao-staging migrate'"
        )


def wait_for_database(prepare: Callable[[], None], timeout: float) -> None:
    """Run ``prepare`` until the database answers and its schema is current, for up to ``timeout`` s.

    Pods start in any order: an API or worker beside a MariaDB that is still starting, or before the
    migration job of a new release has run. They wait (and stay unready) instead of failing.
    """
    deadline, pause = time.monotonic() + timeout, 0.5
    while True:
        try:
            prepare()
            return
        except (OperationalError, SchemaNotCurrent) as exc:
            if time.monotonic() + pause > deadline:
                raise
            reason = exc if isinstance(exc, SchemaNotCurrent) else "the database does not answer yet"
            log.warning("%s; trying again in %.1fs", reason, pause)
            time.sleep(pause)
            pause = min(pause * 2, 10.0)
