"""direct_download: the file itself as an HTTP download (the seed also spells it direct_dowload).

The API process serves it (streamed, with Range); the worker never runs it.
"""

from __future__ import annotations

from ..config import Settings
from ..errors import StagingError
from ..sources import SourcePlan
from .base import StagingMethod, TransferContext, TransferResult


class DirectDownload(StagingMethod):
    name = "direct_download"
    aliases = ("direct_dowload",)
    description = "Download the file through the browser (HTTP, resumable with Range)."
    runs_in_worker = False
    accepts_directories = False

    def check_source(self, plan: SourcePlan, settings: Settings) -> None:
        if plan.is_dir:
            raise StagingError(
                "source_is_directory", "direct_download serves single files; stage a folder with local_copy"
            )

    def stage(self, ctx: TransferContext) -> TransferResult:
        raise RuntimeError("direct_download is served by the API, not by a worker")
