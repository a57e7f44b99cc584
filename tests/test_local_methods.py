"""local_copy and symlink_copy through the real HTTP API, on SQLite and on MariaDB."""

from __future__ import annotations

import os
import stat
import subprocess
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from conftest import LiveService, leftovers, tree_files
from skao_staging.fsops import temp_name


def adler(data: bytes) -> str:
    return f"adler32:{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def make_tree(service: LiveService, name: str) -> dict[str, bytes]:
    files = {
        "table.dat": os.urandom(3000),
        "table.f0": os.urandom(70000),
        "ANTENNA/table.dat": b"antenna",
        "ANTENNA/deeper/x.bin": os.urandom(10),
        "empty.dat": b"",
    }
    for relative, data in files.items():
        service.write_source(f"{name}/obs.ms/{relative}", data)
    (service.storage / name / "obs.ms" / "EMPTY_DIR").mkdir()
    return files


def test_local_copy_of_a_file(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    service.write_source(f"{name}/vis.bin", data, mode=0o644)
    response = service.stage("local_copy", user, f"{name}/vis.bin", "data/vis.bin")
    assert response.status_code == 200, response.text
    body = response.json()
    destination = service.user_area(user) / "data" / "vis.bin"
    assert body["status"] == "succeeded"
    assert body["method"] == "local_copy"
    assert body["bytes"] == len(data)
    assert body["checksum"] == adler(data)
    assert body["destination"] == str(destination)
    assert destination.read_bytes() == data
    assert stat.S_IMODE(destination.stat().st_mode) & 0o222 == 0, "staged file must be read-only"
    assert stat.S_IMODE((service.storage / name / "vis.bin").stat().st_mode) == 0o644, "source untouched"
    assert stat.S_IMODE(destination.parent.stat().st_mode) & 0o200, "user must be able to remove it"
    assert leftovers(service.user_area(user)) == []

    row = service.job_row(body["job_id"])
    assert row["status"] == "succeeded"
    assert row["local_path_on_storage"] == f"{name}/vis.bin"
    assert row["relative_path"] == "data/vis.bin"
    assert row["error_reason"] is None
    assert row["username"] == user
    assert row["bytes_done"] == row["bytes_total"] == len(data)
    assert row["checksum"] == adler(data)
    assert row["started_at"] is not None and row["finished_at"] is not None


def test_absolute_source_inside_a_root(service: LiveService, user: str, name: str) -> None:
    path = service.write_source(f"{name}/a.txt", b"absolute")
    response = service.stage("local_copy", user, str(path), "a.txt")
    assert response.status_code == 200, response.text
    assert (service.user_area(user) / "a.txt").read_bytes() == b"absolute"


def test_same_content_is_skipped_and_untouched(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f.txt", b"hello")
    first = service.stage("local_copy", user, f"{name}/f.txt", "f.txt")
    destination = service.user_area(user) / "f.txt"
    before = destination.stat()
    second = service.stage("local_copy", user, f"{name}/f.txt", "f.txt")
    assert first.json()["status"] == "succeeded"
    assert second.status_code == 200
    assert second.json()["status"] == "skipped"
    assert second.json()["checksum"] == adler(b"hello")
    after = destination.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert service.job_row(second.json()["job_id"])["status"] == "skipped"


def test_different_content_is_a_conflict(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f.txt", b"new content")
    area = service.user_area(user)
    area.mkdir(parents=True)
    (area / "f.txt").write_bytes(b"old content")
    response = service.stage("local_copy", user, f"{name}/f.txt", "f.txt")
    assert response.status_code == 409
    assert response.json()["code"] == "destination_exists"
    assert (area / "f.txt").read_bytes() == b"old content"
    row = service.job_row(response.json()["job_id"])
    assert (row["status"], row["error_code"]) == ("failed", "destination_exists")
    assert leftovers(area) == []


def test_missing_source_is_404_and_recorded(service: LiveService, user: str, name: str) -> None:
    response = service.stage("local_copy", user, f"{name}/nothing.bin", "x.bin")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "source_not_found"
    assert str(service.storage) not in response.text, "no server path in answers"
    row = service.job_row(body["job_id"])
    assert row["status"] == "failed"
    assert "does not exist" in row["error_reason"]
    assert not (service.user_area(user) / "x.bin").exists()


def test_folder_is_staged_whole(service: LiveService, user: str, name: str) -> None:
    files = make_tree(service, name)
    response = service.stage("local_copy", user, f"{name}/obs.ms", "ms/obs.ms")
    assert response.status_code == 200, response.text
    body = response.json()
    top = service.user_area(user) / "ms" / "obs.ms"
    assert tree_files(top) == files
    assert (top / "EMPTY_DIR").is_dir()
    assert body["bytes"] == sum(len(data) for data in files.values())
    assert body["files"] == len(files)
    assert body["checksum"].startswith("adler32:")
    for path in top.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert (mode & 0o222 == 0) if path.is_file() else (mode & 0o200)
    again = service.stage("local_copy", user, f"{name}/obs.ms", "ms/obs.ms")
    assert again.json()["status"] == "skipped"
    assert again.json()["checksum"] == body["checksum"]

    (top / "EXTRA").mkdir()
    changed = service.stage("local_copy", user, f"{name}/obs.ms", "ms/obs.ms")
    assert changed.status_code == 409
    assert leftovers(service.user_area(user)) == []


def test_hard_link(service: LiveService, user: str, name: str) -> None:
    source = service.write_source(f"{name}/big.bin", os.urandom(100_000))
    response = service.stage("symlink_copy", user, f"{name}/big.bin", "linked/big.bin")
    assert response.status_code == 200, response.text
    body = response.json()
    destination = service.user_area(user) / "linked" / "big.bin"
    assert body["status"] == "succeeded" and body["read_only"] is True
    assert destination.stat().st_ino == source.stat().st_ino
    assert not destination.is_symlink()
    assert stat.S_IMODE(source.stat().st_mode) == 0o444, "the source's mode is never changed"
    again = service.stage("symlink_copy", user, f"{name}/big.bin", "linked/big.bin")
    assert again.json()["status"] == "skipped"

    copy_elsewhere = service.stage("local_copy", user, f"{name}/big.bin", "copied.bin")
    assert copy_elsewhere.status_code == 200
    same_bytes_other_inode = service.stage("symlink_copy", user, f"{name}/big.bin", "copied.bin")
    assert same_bytes_other_inode.status_code == 409


def test_hard_link_of_a_writable_source_is_refused(service: LiveService, user: str, name: str) -> None:
    source = service.write_source(f"{name}/w.bin", b"writable", mode=0o664)
    response = service.stage("symlink_copy", user, f"{name}/w.bin", "w.bin")
    assert response.status_code == 409
    assert response.json()["code"] == "source_writable"
    assert not (service.user_area(user) / "w.bin").exists()
    assert stat.S_IMODE(source.stat().st_mode) == 0o664


def test_hard_link_of_a_folder(service: LiveService, user: str, name: str) -> None:
    files = make_tree(service, name)
    response = service.stage("symlink_copy", user, f"{name}/obs.ms", "obs.ms")
    assert response.status_code == 200, response.text
    top = service.user_area(user) / "obs.ms"
    assert tree_files(top) == files
    source_inode = (service.storage / name / "obs.ms" / "table.f0").stat().st_ino
    assert (top / "table.f0").stat().st_ino == source_inode
    assert service.stage("symlink_copy", user, f"{name}/obs.ms", "obs.ms").json()["status"] == "skipped"


def test_identical_requests_at_once_give_one_file(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(8 * 1024 * 1024)
    service.write_source(f"{name}/same.bin", data)
    with ThreadPoolExecutor(12) as pool:
        responses = list(
            pool.map(lambda _: service.stage("local_copy", user, f"{name}/same.bin", "same.bin"), range(12))
        )
    statuses = sorted(response.json()["status"] for response in responses)
    assert all(response.status_code == 200 for response in responses)
    assert statuses.count("succeeded") == 1 and statuses.count("skipped") == 11
    assert (service.user_area(user) / "same.bin").read_bytes() == data
    assert os.listdir(service.user_area(user)) == ["same.bin"]


def test_progress_is_recorded(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(40 * 1024 * 1024)
    service.write_source(f"{name}/p.bin", data)
    body = service.stage("local_copy", user, f"{name}/p.bin", "p.bin").json()
    job = service.get(f"/api/v1/jobs/{body['job_id']}").json()
    assert job["bytes_done"] == job["bytes"] == len(data)
    assert job["attempts"] == 1


def lose_the_data(path: Path) -> None:
    """What a power cut does to a file whose data never reached the disk: same inode, now short,
    its modification time no later than before (a lost write can only set it back)."""
    before = path.stat()
    os.truncate(path, before.st_size // 2)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 1_000_000_000))


def test_a_repeat_request_repairs_a_copy_the_service_published(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(256 * 1024)
    service.write_source(f"{name}/lost.bin", data)
    assert service.stage("local_copy", user, f"{name}/lost.bin", "lost.bin").json()["status"] == "succeeded"
    destination = service.user_area(user) / "lost.bin"
    lose_the_data(destination)

    response = service.stage("local_copy", user, f"{name}/lost.bin", "lost.bin")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded" and response.json()["checksum"] == adler(data)
    assert destination.read_bytes() == data
    assert service.stage("local_copy", user, f"{name}/lost.bin", "lost.bin").json()["status"] == "skipped"


def test_a_repeat_request_never_replaces_what_the_user_changed(service: LiveService, user: str, name: str) -> None:
    data = os.urandom(64 * 1024)
    service.write_source(f"{name}/mine.bin", data)
    assert service.stage("local_copy", user, f"{name}/mine.bin", "mine.bin").json()["status"] == "succeeded"
    destination = service.user_area(user) / "mine.bin"
    destination.chmod(0o644)
    destination.write_bytes(b"the user's own notes")
    destination.chmod(0o444)  # read-only again, but modified after it was published

    response = service.stage("local_copy", user, f"{name}/mine.bin", "mine.bin")
    assert response.status_code == 409 and response.json()["code"] == "destination_exists", response.text
    assert destination.read_bytes() == b"the user's own notes"


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted at ``path`` (the test suite runs as root, as .ci/run does)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs to fill ({mounted.stderr.decode().strip()})"
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_disk_answers_no_space_and_leaves_nothing(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/large.bin", os.urandom(6 * 1024 * 1024))
    area = service.user_area(user)
    with small_filesystem(area, "4m"):
        response = service.stage("local_copy", user, f"{name}/large.bin", "large.bin")
        assert response.status_code == 507 and response.json()["code"] == "no_space", response.text
        assert list(area.iterdir()) == [], "no byte of the copy stays behind"


def test_a_stale_temporary_with_this_attempts_number_is_replaced(service: LiveService, user: str, name: str) -> None:
    """An attempt number can come again (a claim given back unstarted, a refunded attempt): a temporary
    left under it is stale, not a sign that the destination is taken."""
    data = os.urandom(70000)
    service.write_source(f"{name}/a.bin", data)
    make_tree(service, name)
    first = service.stage("local_copy", user, f"{name}/a.bin", "first.bin")
    area = service.user_area(user)
    next_job = first.json()["job_id"] + 1
    (area / temp_name(next_job, 1)).write_bytes(b"torn")  # a file's temporary
    (area / temp_name(next_job + 1, 1)).mkdir()  # a folder's
    for source, relative in ((f"{name}/a.bin", "copy.bin"), (f"{name}/obs.ms", "obs.ms")):
        response = service.stage("local_copy", user, source, relative)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "succeeded", response.json()
    assert (area / "copy.bin").read_bytes() == data
    assert tree_files(area / "obs.ms") == tree_files(service.storage / name / "obs.ms")
    assert leftovers(area) == []
