"""The log file rotates by size and keeps the configured number of old files."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_settings
from skao_staging.logs import LOGGER_NAME, configure_logging, get_logger


@pytest.fixture
def own_logging() -> Iterator[None]:
    """Give the service logger back to the running test service afterwards."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)


@pytest.mark.usefixtures("own_logging")
def test_log_file_rotates_by_size(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db'}", log_max_bytes=2048, log_backup_count=2, log_level="INFO"
    )
    configure_logging(settings)
    log = get_logger("rotation-test")
    for number in range(200):
        log.info("line %d of a log that must rotate", number)
    log.debug("not written at INFO")
    files = sorted(path.name for path in tmp_path.glob("staging_service.log*"))
    assert files == ["staging_service.log", "staging_service.log.1", "staging_service.log.2"]
    assert all(path.stat().st_size <= 2048 for path in tmp_path.glob("staging_service.log*"))
    assert "line 199 of a log" in (tmp_path / "staging_service.log").read_text()
    assert "not written" not in (tmp_path / "staging_service.log").read_text()
