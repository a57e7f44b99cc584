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
