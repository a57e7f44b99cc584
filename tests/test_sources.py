"""A source kind is a plug-in: one ``Source`` class and its registration, and every method stages its plans.

The catalogue below stands for a kind the service does not ship (a Rucio DID resolves the same way:
a name becomes files at paths of their own, landing under names of their own). It runs through the
real pipeline: the service's validation, the job store on SQLite, the executor and the methods.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_settings
from skao_staging.auth import ANONYMOUS
from skao_staging.db import Database, JobStatus, upgrade
from skao_staging.errors import StagingError
from skao_staging.items import StageItem
from skao_staging.runtime import Runtime
from skao_staging.sources import PlannedFile, Source, SourcePlan, Sources


class Catalogue(Source):
    """Datasets by name: ``cat:<dataset>`` lists files stored under unrelated names."""

    field = "local_path_on_storage"

    def __init__(self, datasets: dict[str, dict[str, Path]]) -> None:
        self.datasets = datasets

    def plan(self, raw: str | None, groups: frozenset[str] | None, pin: str | None = None) -> SourcePlan:
        files = self.datasets.get((raw or "").removeprefix("cat:"))
        if files is None:
            raise StagingError("source_not_found", f"no dataset {raw}")
        entries = [PlannedFile((name,), real, False, real.stat().st_size) for name, real in files.items()]
        return SourcePlan(Path("/"), True, lambda: entries)


@pytest.fixture
def catalogue_runtime(tmp_path: Path) -> Iterator[tuple[Runtime, dict[str, bytes]]]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path}/jobs.db")
    settings.storage_roots[0].mkdir(parents=True, exist_ok=True)
    contents = {"a.fits": os.urandom(5000), "b.fits": b"second file"}
    stored: dict[str, Path] = {}
    for index, (name, data) in enumerate(contents.items()):
        real = settings.storage_roots[0] / f"blob-{index}"
        real.write_bytes(data)
        real.chmod(0o444)
        stored[name] = real
    db = Database(settings.database_url)
    upgrade(db)
    runtime = Runtime(settings, db, role="test", threads=1, sources=Sources([Catalogue({"survey": stored})]))
    runtime.start()
    try:
        yield runtime, contents
    finally:
        runtime.stop()


@pytest.mark.parametrize("method", ["local_copy", "symlink_copy"])
def test_every_method_stages_a_plan_of_another_source_kind(
    catalogue_runtime: tuple[Runtime, dict[str, bytes]], method: str
) -> None:
    runtime, contents = catalogue_runtime
    job = runtime.service.stage_now(StageItem(method, "carol", "cat:survey", "staged/survey"), ANONYMOUS)
    assert job.status == JobStatus.SUCCEEDED, job.error_reason
    staged = Path(runtime.settings.user_areas.replace("{username}", "carol")) / "staged" / "survey"
    assert sorted(os.listdir(staged)) == ["a.fits", "b.fits"]
    for name, data in contents.items():
        assert (staged / name).read_bytes() == data
        assert stat.S_IMODE((staged / name).stat().st_mode) & 0o222 == 0
    assert job.files_total == 2
    if method == "local_copy":
        manifest = "".join(
            f"{name}\t{len(data)}\t{zlib.adler32(data) & 0xFFFFFFFF:08x}\n" for name, data in sorted(contents.items())
        )
        assert job.checksum == f"adler32:{zlib.adler32(manifest.encode()) & 0xFFFFFFFF:08x}"


def test_a_refusal_of_the_source_kind_is_recorded(catalogue_runtime: tuple[Runtime, dict[str, bytes]]) -> None:
    runtime, _ = catalogue_runtime
    with pytest.raises(StagingError) as refused:
        runtime.service.stage_now(StageItem("local_copy", "carol", "cat:missing", "x"), ANONYMOUS)
    assert refused.value.code == "source_not_found"
    recorded = runtime.service.jobs.get(refused.value.extra["job_id"])
    assert recorded is not None and recorded.status == JobStatus.FAILED
    assert recorded.error_code == "source_not_found"
