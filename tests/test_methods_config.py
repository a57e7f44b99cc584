"""STAGING_METHODS: a site enables a subset; the rest are refused with the enabled list."""

from __future__ import annotations

from pathlib import Path

import pytest

from skao_staging.config import Settings
from skao_staging.errors import StagingError
from skao_staging.methods import MethodRegistry


def test_a_site_enables_a_subset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STAGING_METHODS", "local_copy, direct_download")
    registry = MethodRegistry(Settings(storage_roots=[tmp_path]))
    assert registry.enabled == ["local_copy", "direct_download"]
    assert registry.get("direct_dowload").name == "direct_download"
    with pytest.raises(StagingError) as refused:
        registry.get("symlink_copy")
    assert refused.value.code == "method_not_enabled"
    assert refused.value.status_code == 400
    assert refused.value.extra["enabled_methods"] == ["local_copy", "direct_download"]


def test_unknown_names_in_the_configuration_stop_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown methods: teleport"):
        MethodRegistry(Settings(storage_roots=[tmp_path], methods=["local_copy", "teleport"]))
