"""direct_download: the data itself as an HTTP download (the seed also spells it direct_dowload).

The API process serves it: a file streamed with Range, a folder or a dataset as one streamed ZIP
(``api/routes/download.py``); the worker never runs it.
"""

from __future__ import annotations

from .base import StagingMethod, TransferContext, TransferResult


class DirectDownload(StagingMethod):
    name = "direct_download"
    aliases = ("direct_dowload",)
    description = "Download through the browser: a file (resumable with Range), a folder or dataset as one ZIP."
    runs_in_worker = False
    accepts_directories = True

    def stage(self, ctx: TransferContext) -> TransferResult:
        raise RuntimeError("direct_download is served by the API, not by a worker")
