"""local_copy: a verified copy into ``<user area>/<relative_path>``, made read-only."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..checksum import adler32_of_fd
from ..fsops import READ_ONLY_FILE_MODE, copy_verified, create_temp_file
from ..paths import SourceEntry
from .base import TransferContext
from .local import LocalMethod
from .tree import FileMatch

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalCopy(LocalMethod):
    name = "local_copy"
    description = "Copy into your user area (verified, read-only); files and whole folders."

    def compare_file(self, source: SourceEntry, dir_fd: int, name: str) -> FileMatch:
        dest_fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        try:
            if os.fstat(dest_fd).st_size != source.size:
                return FileMatch(False)
            src_fd = os.open(source.real, _READ_FLAGS)
            try:
                source_adler = adler32_of_fd(src_fd)
            finally:
                os.close(src_fd)
            return FileMatch(adler32_of_fd(dest_fd) == source_adler, source_adler)
        finally:
            os.close(dest_fd)

    def place_file(
        self,
        source: SourceEntry,
        dir_fd: int,
        name: str,
        ctx: TransferContext,
        progress: Callable[[int], None],
    ) -> int:
        settings = ctx.settings
        src_fd = os.open(source.real, _READ_FLAGS)
        try:
            dst_fd = create_temp_file(dir_fd, name)
            try:
                adler = copy_verified(
                    src_fd,
                    dst_fd,
                    chunk=settings.copy_chunk_bytes,
                    verify=settings.verify_copies,
                    on_progress=progress,
                    max_bytes_per_second=settings.max_bytes_per_second,
                )
                if ctx.owner is not None:
                    os.fchown(dst_fd, *ctx.owner)
                os.fchmod(dst_fd, READ_ONLY_FILE_MODE)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
        return adler
