"""Logging set-up: a size-rotated log file and stderr, levels from configuration."""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import time

from .config import Settings
from .text import escape_unsafe

LOGGER_NAME = "skao_staging"
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_HANDLER_MARK = "_skao_staging_handler"


class SafeFormatter(logging.Formatter):
    """Escapes control characters in messages, so user input cannot forge log lines.

    Times are ISO 8601 in UTC with milliseconds (``2026-11-24T19:48:34.274Z``): unambiguous for
    operators anywhere, and shown by the web UI in the reader's own time and locale.
    Stack traces (appended after the message) keep their real line breaks.
    A record is formatted once, however many handlers write it (the file's size check, the file, stderr).
    """

    def format(self, record: logging.LogRecord) -> str:
        done: tuple[SafeFormatter, str] | None = getattr(record, "_skao_staging_text", None)
        if done is not None and done[0] is self:
            return done[1]
        text = super().format(record)
        record._skao_staging_text = (self, text)
        return text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}.{int(record.msecs):03d}Z"

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_unsafe(record.message)
        return super().formatMessage(record)


class ReopeningRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates by size, and re-opens its file when someone else moved or deleted it.

    An external log rotation (logrotate, a sidecar) renames or removes the file; without this the
    service would go on writing into the unlinked file until its own size rotation, and the Logs
    view, which reads the file by name, would show nothing new. One ``stat`` a line, as
    ``WatchedFileHandler`` does.
    """

    _regular = True  # whether the file at its name is a regular file (only such a file rotates)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            named: os.stat_result | None = os.stat(self.baseFilename)
        except FileNotFoundError:
            named = None
        self._regular = named is None or stat.S_ISREG(named.st_mode)
        if self.stream is not None and self._moved(named, os.fstat(self.stream.fileno())):
            self.stream.close()
            self.stream = self._open()
        super().emit(record)

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """RotatingFileHandler's rule on what ``emit`` found, without stat-ing the file again."""
        if self.stream is None:
            self.stream = self._open()
        if self.maxBytes <= 0 or not self._regular:
            return False
        return self.stream.tell() + len(self.format(record)) + 1 >= self.maxBytes

    @staticmethod
    def _moved(named: os.stat_result | None, own: os.stat_result) -> bool:
        return named is None or (named.st_dev, named.st_ino) != (own.st_dev, own.st_ino)


def configure_logging(settings: Settings) -> logging.Logger:
    """(Re)configure the service logger; replaces handlers installed by an earlier call."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    log_dir = os.path.dirname(os.path.abspath(settings.log_file))
    os.makedirs(log_dir, exist_ok=True)
    file_handler = ReopeningRotatingFileHandler(
        settings.log_file,
        maxBytes=settings.log_max_bytes,
        backupCount=settings.log_backup_count,
        encoding="utf-8",
    )
    stderr_handler = logging.StreamHandler()
    formatter = SafeFormatter(FORMAT)
    for handler in (file_handler, stderr_handler):
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    logger.propagate = False
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")
