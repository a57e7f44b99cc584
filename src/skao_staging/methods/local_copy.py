"""local_copy: a verified copy into ``<user area>/<relative_path>``, made read-only."""

from __future__ import annotations

import os

from ..checksum import adler32_of_fd, adler32_of_file
from ..copier import check_against_catalogue, check_unchanged, copy_verified
from ..fsops import READ_FLAGS, READ_ONLY_FILE_MODE, create_temp_file
from ..sources import PlannedFile
from .base import FileChecksum, TransferContext
from .local import LocalMethod, Progress


class LocalCopy(LocalMethod):
    name = "local_copy"
    description = "Copy into your user area (verified, read-only); files and whole folders."
    repairs_own_output = True

    def compare_file(self, source: PlannedFile, dir_fd: int, name: str) -> FileChecksum | None:
        dest_fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
        try:
            if os.fstat(dest_fd).st_size != source.size:
                return None
            source_adler = adler32_of_file(source.real)
            return FileChecksum(source, source_adler) if adler32_of_fd(dest_fd) == source_adler else None
        finally:
            os.close(dest_fd)

    def place_file(self, source: PlannedFile, dir_fd: int, name: str, ctx: TransferContext, progress: Progress) -> int:
        settings = ctx.settings
        src_fd = os.open(source.real, READ_FLAGS)
        try:
            before = os.fstat(src_fd)
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
                check_unchanged(before, src_fd, source.real)
                check_against_catalogue(source, adler)
                if ctx.owner is not None:
                    os.fchown(dst_fd, *ctx.owner)
                os.fchmod(dst_fd, READ_ONLY_FILE_MODE)
                if ctx.flushes_alone:  # a folder, or a batch, is flushed whole, once
                    os.fsync(dst_fd)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
        return adler
