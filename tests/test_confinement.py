"""Every kind of escape attempt is refused, recorded, and writes nothing outside the user area."""

from __future__ import annotations

import os

import httpx
import pytest

from conftest import LiveService

BAD_RELATIVE = ["../x", "a/../../x", "a/..", "/abs/x", "a\x00b", "", "./", "a/\x07b", "x" * 300, "a/" * 2100]
BAD_SOURCE = ["/etc/passwd", "../../../etc/passwd", "x/../../etc/passwd", "a\x00b", ""]
BAD_USERS = ["../bob", "-x", ".hidden", "a" * 65, "al ice", "alice/..", "al/ice", "é", "a\x00", "a\nb"]


@pytest.mark.parametrize("relative", BAD_RELATIVE)
def test_bad_relative_paths(service: LiveService, user: str, name: str, relative: str) -> None:
    service.write_source(f"{name}/f", b"x")
    response = service.stage("local_copy", user, f"{name}/f", relative)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_path"
    assert service.job_row(response.json()["job_id"])["status"] == "failed"
    assert not service.user_area(user).exists()


@pytest.mark.parametrize("source", BAD_SOURCE)
def test_bad_sources(service: LiveService, user: str, source: str) -> None:
    response = service.stage("local_copy", user, source, "stolen")
    assert response.status_code in (400, 403), response.text
    assert response.json()["code"] in ("invalid_path", "source_outside_storage")
    assert not (service.user_area(user) / "stolen").exists()


@pytest.mark.parametrize("username", BAD_USERS)
def test_hostile_usernames(service: LiveService, name: str, username: str) -> None:
    service.write_source(f"{name}/f", b"x")
    response = service.stage("local_copy", username, f"{name}/f", "f")
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_username"
    assert {entry for entry in os.listdir(service.users.parent) if not entry.startswith("staging")} == {
        "storage",
        "users",
        "outside",
    }


@pytest.mark.parametrize("username", ["a\x00", "a" * 300])
def test_hostile_usernames_of_a_bulk_request_are_refused_and_recorded(
    service: LiveService, name: str, username: str
) -> None:
    service.write_source(f"{name}/f", b"x")
    item = {"method": "local_copy", "local_path_on_storage": f"{name}/f", "relative_path": "f", "did": None}
    response = httpx.post(f"{service.url}/api/v1/jobs", json={"username": username, "items": [item]}, timeout=30)
    assert response.status_code == 400, response.text  # every item would be refused: the request is
    body = response.json()
    assert body["code"] == "invalid_username"
    assert service.job_row(body["job_id"])["error_code"] == "invalid_username"  # recorded


def test_symlink_out_of_storage_is_refused(service: LiveService, user: str, name: str) -> None:
    secret = service.outside / f"{name}-secret"
    secret.write_bytes(b"secret")
    link = service.storage / name / "innocent.txt"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    for method in ("local_copy", "symlink_copy", "direct_download"):
        response = service.stage(method, user, f"{name}/innocent.txt", "got.txt")
        assert response.status_code == 403, (method, response.text)
        assert response.json()["code"] == "source_outside_storage"
        assert "secret" not in response.text
    assert not (service.user_area(user) / "got.txt").exists()


def test_symlink_inside_storage_is_followed(service: LiveService, user: str, name: str) -> None:
    target = service.write_source(f"{name}/real.txt", b"real")
    (service.storage / name / "alias.txt").symlink_to(target)
    response = service.stage("local_copy", user, f"{name}/alias.txt", "alias.txt")
    assert response.status_code == 200, response.text
    assert (service.user_area(user) / "alias.txt").read_bytes() == b"real"


def test_symlink_out_of_storage_inside_a_folder(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/ds/ok.txt", b"ok")
    (service.storage / name / "ds" / "etc").symlink_to("/etc")
    response = service.stage("local_copy", user, f"{name}/ds", "ds")
    assert response.status_code == 403
    area = service.user_area(user)
    assert not area.exists() or list(area.iterdir()) == []


def test_symlink_in_the_user_area_is_not_followed(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"payload")
    area = service.user_area(user)
    area.mkdir(parents=True)
    trap = service.outside / name
    trap.mkdir()
    (area / "evil").symlink_to(trap)
    for method in ("local_copy", "symlink_copy"):
        response = service.stage(method, user, f"{name}/f", "evil/f")
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "unsafe_destination"
    assert list(trap.iterdir()) == []


def test_destination_that_is_a_symlink_is_a_conflict(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"payload")
    area = service.user_area(user)
    area.mkdir(parents=True)
    target = service.outside / f"{name}-target"
    (area / "f").symlink_to(target)
    response = service.stage("local_copy", user, f"{name}/f", "f")
    assert response.status_code == 409
    assert not target.exists()


def test_file_in_the_way_of_a_folder(service: LiveService, user: str, name: str) -> None:
    service.write_source(f"{name}/f", b"payload")
    area = service.user_area(user)
    area.mkdir(parents=True)
    (area / "blocker").write_bytes(b"")
    response = service.stage("local_copy", user, f"{name}/f", "blocker/f")
    assert response.status_code == 409
    assert response.json()["code"] == "destination_blocked"


def test_special_files_are_refused(service: LiveService, user: str, name: str) -> None:
    fifo = service.storage / name / "pipe"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    response = service.stage("local_copy", user, f"{name}/pipe", "pipe")
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_source"
