"""jupyter_copy: stage into the user's Jupyter server through JupyterHub (not built yet)."""

from __future__ import annotations

from ..config import Settings
from ..errors import StagingError
from .base import StagingMethod, TransferContext, TransferResult


class JupyterCopy(StagingMethod):
    name = "jupyter_copy"
    description = "Upload into the user's Jupyter server through JupyterHub."

    def availability_problem(self, settings: Settings) -> str | None:
        return "this version of the service has no JupyterHub client yet"

    def stage(self, ctx: TransferContext) -> TransferResult:
        raise StagingError("method_not_enabled", "jupyter_copy is not enabled at this site")
