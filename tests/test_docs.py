"""The README's configuration table names every setting, and only real ones."""

from __future__ import annotations

import re
from pathlib import Path

from skao_staging.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_every_setting() -> None:
    documented = set()
    for names in re.findall(r"^\| (`STAGING_[A-Z_]+`(?: / `STAGING_[A-Z_]+`)*) \|", README.read_text(), re.MULTILINE):
        documented.update(re.findall(r"`STAGING_([A-Z_]+)`", names))
    settings = {name.upper() for name in Settings.model_fields}
    assert documented == settings


def test_readme_lists_every_error_code_under_its_status() -> None:
    from skao_staging.errors import CODES

    listed: dict[str, int] = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| (.+) \|$", README.read_text(), re.MULTILINE):
        for code in re.findall(r"`([a-z_]+)`", codes):
            listed[code] = int(status)
    documented = {code: entry.status for code, entry in CODES.items() if entry.status != 499}
    assert listed == documented
