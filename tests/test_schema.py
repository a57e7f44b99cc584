"""The migrations build exactly the tables the models describe, on every supported database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from skao_staging.db import Database
from skao_staging.db.migrate import upgrade
from skao_staging.db.models import Base


@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_the_migrations_match_the_models(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}" if backend == "sqlite" else request.getfixturevalue(f"{backend}_url")
    db = Database(url)
    try:
        upgrade(db)
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        db.dispose()
    assert differences == []


def test_requests_made_before_notices_are_not_told_of_at_once(tmp_path: Path) -> None:
    """Switching notices on after an upgrade does not mail every request of the last week."""
    from sqlalchemy import text

    db = Database(f"sqlite:///{tmp_path / 'upgrade.db'}")
    try:
        upgrade(db, "0010")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO staging_requests (id, created_at) VALUES ('old', CURRENT_TIMESTAMP)"))
        upgrade(db)
        with db.engine.connect() as connection:
            marked = connection.execute(text("SELECT ended_notified_at FROM staging_requests")).scalar_one()
    finally:
        db.dispose()
    assert marked is not None
