"""Staging by Rucio DID against a real Rucio server (SQLite, gunicorn on loopback, seeded with the
official client): file, dataset and container DIDs, the catalogue's checksum, refusals."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveService, ThreadedServer, tree_files
from conftest import live_service as live
from rucio_server import VENV, RucioServer, Site

RUCIO_ACCOUNT = {  # the service reads the catalogue as this account (the test server bootstraps it)
    "rucio_account": "root",
    "rucio_username": "ddmlab",
    "rucio_password": "secret",
    "rucio_rse": "SITE_LOCAL",
}
pytestmark = pytest.mark.skipif(
    not (VENV / "bin" / "gunicorn").exists(), reason="scripts/test makes the Rucio server's environment"
)


def adler(data: bytes) -> str:
    return f"adler32:{zlib.adler32(data) & 0xFFFFFFFF:08x}"


@dataclass
class Catalogue:
    server: RucioServer
    site: Site
    other: Site
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogue]:
    base = tmp_path_factory.mktemp("rucio")
    server = RucioServer(base / "server")
    server.workdir.mkdir()
    server.start()
    try:
        client = server.client()
        client.add_scope("root", "sky")
        storage = base / "service" / "storage"
        site = Site.create(client, "SITE_LOCAL", "/srcnet/site", storage / "rse")
        other = Site.create(client, "FAR_AWAY", "/far/away", base / "far")
        files = {name: os.urandom(size) for name, size in (("a.fits", 70_000), ("b.fits", 1234), ("c.fits", 5))}
        for name, data in files.items():
            site.add_file("sky", name, data)
        client.add_dataset("sky", "survey")
        client.attach_dids("sky", "survey", [{"scope": "sky", "name": name} for name in ("a.fits", "b.fits")])
        client.add_dataset("sky", "extra")
        client.attach_dids("sky", "extra", [{"scope": "sky", "name": "c.fits"}])
        client.add_container("sky", "campaign")
        client.attach_dids("sky", "campaign", [{"scope": "sky", "name": "survey"}, {"scope": "sky", "name": "extra"}])
        client.add_container("sky", "programme")  # a container of containers
        client.attach_dids("sky", "programme", [{"scope": "sky", "name": "campaign"}])
        other.add_file("sky", "remote.fits", b"only far away")
        client.add_scope("root", "vault")
        site.add_file("vault", "v.fits", b"for the team only")
        yield Catalogue(server, site, other, files)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    base = catalogue.site.mount.parent.parent
    server, live_service = live(
        base,
        **RUCIO_ACCOUNT,
        rucio_url=catalogue.server.url,
        rucio_rse_mounts={catalogue.site.pfn_prefix: catalogue.site.mount},
    )
    with server:
        yield live_service


def reading(catalogue: Catalogue, base: Path, **overrides: Any) -> tuple[ThreadedServer, LiveService]:
    """A service of its own (in ``base``) reading the test catalogue, whose RSE mount is its storage root."""
    settings = {
        **RUCIO_ACCOUNT,
        "rucio_url": catalogue.server.url,
        "rucio_rse_mounts": {catalogue.site.pfn_prefix: catalogue.site.mount},
        "storage_roots": [catalogue.site.mount],
    }
    return live(base, **{**settings, **overrides})


def stage_did(service: LiveService, method: str, user: str, did: str, relative: str | None) -> httpx.Response:
    body = {"did": did} if relative is None else {"did": did, "relative_path": relative}
    return httpx.post(f"{service.url}/stage_data", params={"method": method, "username": user}, json=body, timeout=60)


def test_the_site_says_dids_are_enabled(service: LiveService) -> None:
    config = service.get("/api/v1/config").json()
    assert (config["dids"], config["rucio_rse"]) == (True, "SITE_LOCAL")


def test_a_file_did_is_copied_and_verified_against_the_catalogue(service: LiveService, catalogue: Catalogue) -> None:
    response = stage_did(service, "local_copy", "ada", "sky:a.fits", "data/a.fits")
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["did"], job["local_path_on_storage"]) == ("succeeded", "sky:a.fits", None)
    assert job["checksum"] == adler(catalogue.files["a.fits"])
    assert (service.user_area("ada") / "data" / "a.fits").read_bytes() == catalogue.files["a.fits"]
    again = stage_did(service, "local_copy", "ada", "sky:a.fits", "data/a.fits")
    assert again.json()["status"] == "skipped"


def test_a_file_did_is_hard_linked_and_downloaded(service: LiveService, catalogue: Catalogue) -> None:
    linked = stage_did(service, "symlink_copy", "bo", "sky:b.fits", "b.fits")
    assert linked.status_code == 200 and linked.json()["status"] == "succeeded", linked.text
    staged = service.user_area("bo") / "b.fits"
    assert staged.read_bytes() == catalogue.files["b.fits"]
    replica = next(catalogue.site.mount.rglob("b.fits"))
    assert staged.stat().st_ino == replica.stat().st_ino
    download = stage_did(service, "direct_download", "bo", "sky:b.fits", None)
    assert download.status_code == 200 and download.content == catalogue.files["b.fits"]


def test_a_dataset_becomes_one_job_per_file(service: LiveService, catalogue: Catalogue) -> None:
    items = [{"method": "local_copy", "did": "sky:survey", "relative_path": "survey"}]
    accepted = httpx.post(f"{service.url}/api/v1/jobs", json={"username": "cy", "items": items}, timeout=60)
    assert accepted.status_code == 202, accepted.text
    jobs = [item["job"] for item in accepted.json()["items"]]
    assert sorted(job["did"] for job in jobs) == ["sky:a.fits", "sky:b.fits"]
    wait_request(service, accepted.json()["request_id"])
    assert service.get(f"/api/v1/requests/{accepted.json()['request_id']}").json()["dids"] == ["sky:survey"]
    area = service.user_area("cy") / "survey"
    assert {path.name: path.read_bytes() for path in area.iterdir()} == {
        name: catalogue.files[name] for name in ("a.fits", "b.fits")
    }


def test_a_container_lands_by_dataset(service: LiveService, catalogue: Catalogue) -> None:
    items = [{"method": "local_copy", "did": "sky:campaign", "relative_path": "campaign"}]
    accepted = httpx.post(f"{service.url}/api/v1/jobs", json={"username": "dee", "items": items}, timeout=60)
    assert accepted.status_code == 202, accepted.text
    wait_request(service, accepted.json()["request_id"])
    area = service.user_area("dee") / "campaign"
    found = {str(path.relative_to(area)): path.read_bytes() for path in area.rglob("*") if path.is_file()}
    assert found == {
        "survey/a.fits": catalogue.files["a.fits"],
        "survey/b.fits": catalogue.files["b.fits"],
        "extra/c.fits": catalogue.files["c.fits"],
    }


def test_a_corrupt_replica_fails_and_publishes_nothing(service: LiveService, catalogue: Catalogue) -> None:
    data = os.urandom(4096)
    path = catalogue.site.add_file("sky", "corrupt.fits", data)
    path.chmod(0o644)
    path.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size, other bytes: the disk went bad
    path.chmod(0o444)
    response = stage_did(service, "local_copy", "eve", "sky:corrupt.fits", "corrupt.fits")
    assert response.status_code == 500 and response.json()["code"] == "checksum_mismatch", response.text
    assert list(service.user_area("eve").rglob("*")) == []


def test_refusals(service: LiveService, catalogue: Catalogue) -> None:
    cases = {
        "sky:nothing-here.fits": (404, "did_not_found"),
        "sky:remote.fits": (404, "not_at_site"),
        "../etc:passwd": (400, "invalid_did"),
        "sky:../../etc/passwd": (400, "invalid_did"),
        "sky:/etc/passwd": (400, "invalid_did"),
        "sky:a\u0085b": (400, "invalid_did"),
        "no-colon": (400, "invalid_did"),
        "sky:" + "x" * 300: (400, "invalid_did"),
    }
    for did, (status, code) in cases.items():
        response = stage_did(service, "local_copy", "fay", did, "x.fits")
        assert (response.status_code, response.json()["code"]) == (status, code), (did, response.text)
    not_here = stage_did(service, "local_copy", "fay", "sky:remote.fits", "x.fits").json()
    assert "FAR_AWAY" in not_here["detail"]
    both = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "local_copy", "username": "fay"},
        json={"did": "sky:a.fits", "local_path_on_storage": "x", "relative_path": "x"},
    )
    assert both.status_code == 422 and both.json()["code"] == "invalid_request"


def test_a_registered_file_missing_on_disk(service: LiveService, catalogue: Catalogue) -> None:
    catalogue.site.add_file("sky", "lost.fits", b"lost").unlink()
    response = stage_did(service, "local_copy", "gus", "sky:lost.fits", "lost.fits")
    assert response.status_code == 404 and response.json()["code"] == "source_not_found", response.text


def test_a_pfn_outside_every_mount_is_refused(catalogue: Catalogue, tmp_path: Path) -> None:
    server, elsewhere = live(
        tmp_path,
        **RUCIO_ACCOUNT,
        rucio_url=catalogue.server.url,
        rucio_rse_mounts={"file://localhost/somewhere/else/": tmp_path / "storage"},
    )
    with server:
        response = stage_did(elsewhere, "local_copy", "hal", "sky:a.fits", "a.fits")
    assert response.status_code == 403 and response.json()["code"] == "source_outside_storage", response.text


def test_rucio_unreachable_answers_503(tmp_path: Path) -> None:
    from cluster import free_port

    server, offline = live(
        tmp_path,
        **RUCIO_ACCOUNT,
        rucio_url=f"http://127.0.0.1:{free_port()}",
    )
    with server:
        response = stage_did(offline, "local_copy", "ivy", "sky:a.fits", "a.fits")
    assert response.status_code == 503 and response.json()["code"] == "rucio_unavailable", response.text
    assert "secret" not in response.text


def wait_request(service: LiveService, request_id: str, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = service.get(f"/api/v1/requests/{request_id}").json()
        if state["state"] != "active":
            assert state["state"] == "succeeded", state
            return
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} still active")


def test_a_dataset_through_the_command_line(service: LiveService, catalogue: Catalogue) -> None:
    import subprocess
    import sys

    bin_ = Path(sys.executable).with_name("skao-staging")
    result = subprocess.run(
        [str(bin_), "stage", "local_copy", "jo", "sky:survey", "cli-survey", "--did", "--url", service.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded: 2 jobs" in result.stdout
    assert (service.user_area("jo") / "cli-survey" / "b.fits").read_bytes() == catalogue.files["b.fits"]


def test_scopes_restricted_to_groups(catalogue: Catalogue, tmp_path: Path) -> None:
    server, site = reading(
        catalogue,
        tmp_path,
        auth_mode="header",
        trusted_proxies=["127.0.0.1/32"],
        group_rucio_scopes={"vault-team": ["vault"]},
    )

    def as_user(name: str, groups: str, did: str) -> httpx.Response:
        return httpx.post(
            f"{site.url}/stage_data",
            params={"method": "local_copy"},
            json={"did": did, "relative_path": did.split(":")[1]},
            headers={"X-Forwarded-User": name, "X-Forwarded-Groups": groups},
            timeout=60,
        )

    with server:
        outsider = as_user("kai", "astro", "vault:v.fits")
        member = as_user("lea", "astro,vault-team", "vault:v.fits")
        open_scope = as_user("kai", "astro", "sky:c.fits")
        outsider_headers = {"X-Forwarded-User": "kai", "X-Forwarded-Groups": "astro"}
        search = httpx.get(f"{site.url}/api/v1/dids", params={"scope": "vault"}, headers=outsider_headers)
        describe = httpx.get(f"{site.url}/api/v1/dids/vault/v.fits", headers=outsider_headers)
    for refused in (search, describe):
        assert refused.status_code == 403 and refused.json()["code"] == "scope_forbidden", refused.text
    assert outsider.status_code == 403 and outsider.json()["code"] == "scope_forbidden", outsider.text
    assert member.status_code == 200 and member.json()["status"] == "succeeded", member.text
    assert open_scope.status_code == 200, open_scope.text


def test_rucio_stopped_mid_request_loses_nothing(tmp_path: Path) -> None:
    """Rucio stops: jobs accepted before run all the same (each carries its replica from acceptance);
    a new request answers 503 rucio_unavailable (recorded); once Rucio is back, retrying it stages it."""
    rucio = RucioServer(tmp_path / "server")
    rucio.workdir.mkdir()
    rucio.start()
    try:
        client = rucio.client()
        client.add_scope("root", "sky")
        site = Site.create(client, "SITE_LOCAL", "/srcnet/site", tmp_path / "storage" / "rse")
        files = {name: os.urandom(3000) for name in ("d.fits", "e.fits", "f.fits")}
        for name, data in files.items():
            site.add_file("sky", name, data)
        client.add_dataset("sky", "pair")
        client.attach_dids("sky", "pair", [{"scope": "sky", "name": name} for name in ("e.fits", "f.fits")])
        settings = {**RUCIO_ACCOUNT, "rucio_url": rucio.url, "rucio_rse_mounts": {site.pfn_prefix: site.mount}}
        api_server, api = live(tmp_path, **settings, embedded_worker=False)
        with api_server:
            accepted = httpx.post(
                f"{api.url}/api/v1/jobs",
                json={"username": "mo", "items": [{"method": "local_copy", "did": "sky:pair", "relative_path": "p"}]},
                timeout=60,
            )
            assert accepted.status_code == 202, accepted.text
            rucio.stop()
            refused = stage_did(api, "local_copy", "mo", "sky:d.fits", "d.fits")
            assert refused.status_code == 503 and refused.json()["code"] == "rucio_unavailable", refused.text
            worker_server, worker = live(tmp_path, **settings, retry_backoff_seconds=0.5)
            with worker_server:
                wait_request(worker, accepted.json()["request_id"])  # staged while Rucio is down
                rucio.start()
                job_id = refused.json()["job_id"]
                retried = httpx.post(f"{worker.url}/api/v1/jobs/{job_id}/retry", timeout=60)
                assert retried.status_code == 202, retried.text
                wait_request(worker, retried.json()["request_id"])
        assert tree_files(api.user_area("mo")) == {
            "d.fits": files["d.fits"],
            "p/e.fits": files["e.fits"],
            "p/f.fits": files["f.fits"],
        }
    finally:
        rucio.stop()


def test_search_and_describe_dids_before_staging(service: LiveService, catalogue: Catalogue) -> None:
    found = service.get("/api/v1/dids", params={"scope": "sky", "name": "surv*"}).json()
    assert found["dids"] == [{"did": "sky:survey", "type": "DATASET"}]
    files = service.get("/api/v1/dids", params={"scope": "sky", "name": "*.fits", "limit": 2}).json()["dids"]
    assert len(files) == 2 and all(item["type"] == "FILE" for item in files), "paged"
    survey = service.get("/api/v1/dids/sky/survey").json()
    expected_bytes = len(catalogue.files["a.fits"]) + len(catalogue.files["b.fits"])
    assert survey == {
        "did": "sky:survey", "type": "DATASET", "files": 2, "bytes": expected_bytes, "files_at_site": 2, "at_site": True
    }  # fmt: skip
    remote = service.get("/api/v1/dids/sky/remote.fits").json()
    assert (remote["type"], remote["files"], remote["at_site"]) == ("FILE", 1, False)
    missing = service.get("/api/v1/dids/sky/nothing.fits")
    assert missing.status_code == 404 and missing.json()["code"] == "did_not_found"
    bad = service.get("/api/v1/dids", params={"scope": "sky\u0085", "name": "*"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_did"


def test_a_container_downloads_as_one_zip(service: LiveService, catalogue: Catalogue) -> None:
    import io
    import zipfile

    response = stage_did(service, "direct_download", "nia", "sky:campaign", None)
    assert response.status_code == 200, response.text
    assert 'filename="campaign.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        found = {name: archive.read(name) for name in archive.namelist()}
    assert found == {
        "campaign/survey/a.fits": catalogue.files["a.fits"],
        "campaign/survey/b.fits": catalogue.files["b.fits"],
        "campaign/extra/c.fits": catalogue.files["c.fits"],
    }


def test_a_dataset_is_hard_linked_whole(service: LiveService, catalogue: Catalogue) -> None:
    """symlink_copy of a dataset: one job per file, each a second name of its replica on the RSE mount."""
    items = [{"method": "symlink_copy", "did": "sky:survey", "relative_path": "linked"}]
    accepted = httpx.post(f"{service.url}/api/v1/jobs", json={"username": "lin", "items": items}, timeout=60)
    assert accepted.status_code == 202, accepted.text
    wait_request(service, accepted.json()["request_id"])  # succeeded
    assert service.get(f"/api/v1/requests/{accepted.json()['request_id']}").json()["counts"] == {"succeeded": 2}
    replicas = {
        (path.stat().st_dev, path.stat().st_ino): path for path in catalogue.site.mount.rglob("*") if path.is_file()
    }
    area = service.user_area("lin") / "linked"
    for name in ("a.fits", "b.fits"):
        staged = (area / name).stat()
        replica = replicas[(staged.st_dev, staged.st_ino)]  # the very file, not a copy
        assert replica.read_bytes() == catalogue.files[name] and staged.st_nlink >= 2
    jobs = httpx.get(f"{service.url}/api/v1/jobs", params={"request": accepted.json()["request_id"]}).json()["jobs"]
    assert {job["method"] for job in jobs} == {"symlink_copy"} and all(job["read_only"] for job in jobs)


def test_nested_containers_land_by_dataset(service: LiveService, catalogue: Catalogue) -> None:
    items = [{"method": "symlink_copy", "did": "sky:programme", "relative_path": "p"}]
    accepted = httpx.post(f"{service.url}/api/v1/jobs", json={"username": "ola", "items": items}, timeout=60)
    assert accepted.status_code == 202, accepted.text
    wait_request(service, accepted.json()["request_id"])
    area = service.user_area("ola") / "p"
    found = sorted(str(path.relative_to(area)) for path in area.rglob("*") if path.is_file())
    assert found == ["extra/c.fits", "survey/a.fits", "survey/b.fits"]


def test_credentials_from_a_token_file_the_site_refreshes(catalogue: Catalogue, tmp_path: Path) -> None:
    """STAGING_RUCIO_TOKEN_FILE instead of userpass: the token is read again whenever the file changes."""
    token_file = tmp_path / "rucio-token"
    token_file.write_text(userpass_token(catalogue.server) + "\n")
    server, site = reading(catalogue, tmp_path, rucio_username=None, rucio_password=None, rucio_token_file=token_file)
    with server:
        first = stage_did(site, "local_copy", "tia", "sky:b.fits", "b.fits")
        assert first.status_code == 200 and first.json()["status"] == "succeeded", first.text

        token_file.write_text("expired-or-revoked\n")
        refused = stage_did(site, "local_copy", "tia", "sky:c.fits", "c.fits")
        assert refused.status_code == 502 and refused.json()["code"] == "rucio_forbidden", refused.text
        assert "expired-or-revoked" not in refused.text

        token_file.write_text(userpass_token(catalogue.server) + "\n")  # the site's refresh
        again = stage_did(site, "local_copy", "tia", "sky:c.fits", "c.fits")
        assert again.status_code == 200 and again.json()["status"] == "succeeded", again.text
    assert (site.user_area("tia") / "c.fits").read_bytes() == catalogue.files["c.fits"]


def userpass_token(server: RucioServer) -> str:
    headers = {"X-Rucio-Account": "root", "X-Rucio-Username": "ddmlab", "X-Rucio-Password": "secret"}
    return httpx.get(f"{server.url}/auth/userpass", headers=headers).headers["x-rucio-auth-token"]


@pytest.mark.parametrize("verify_links", [False, True])
def test_a_hard_link_checks_the_catalogues_size_and_optionally_its_checksum(
    catalogue: Catalogue, tmp_path: Path, verify_links: bool
) -> None:
    data = os.urandom(2048)
    name = f"link-{verify_links}.fits"
    path = catalogue.site.add_file("sky", name, data)
    path.chmod(0o644)
    path.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size, other bytes
    path.chmod(0o444)
    shrunk = catalogue.site.add_file("sky", f"shrunk-{verify_links}.fits", data)
    shrunk.chmod(0o644)
    shrunk.write_bytes(data[:-1])
    shrunk.chmod(0o444)
    server, site = reading(catalogue, tmp_path, rucio_verify_links=verify_links)
    with server:
        linked = stage_did(site, "symlink_copy", "uma", f"sky:{name}", name)
        short = stage_did(site, "symlink_copy", "uma", f"sky:shrunk-{verify_links}.fits", "shrunk.fits")
    assert short.json()["code"] == "checksum_mismatch", short.text  # the size is always checked
    if verify_links:
        assert linked.status_code == 500 and linked.json()["code"] == "checksum_mismatch", linked.text
        assert list(site.user_area("uma").iterdir()) == [], "nothing is linked"
    else:
        assert linked.status_code == 200 and linked.json()["status"] == "succeeded", linked.text


@pytest.fixture
def replicating_site(catalogue: Catalogue, tmp_path: Path) -> Iterator[LiveService]:
    """A service that looks at waiting jobs every 0.2 s and gives up on a replica after 4 s."""
    server, site = reading(catalogue, tmp_path, rucio_replication_poll_seconds=0.2, rucio_replication_timeout_seconds=4)
    with server:
        yield site


def ask_replication(site: LiveService, user: str, did: str, relative: str) -> httpx.Response:
    body = {"did": did, "relative_path": relative, "request_replication": True}
    return httpx.post(f"{site.url}/stage_data", params={"method": "local_copy", "username": user}, json=body)


def wait_status(site: LiveService, job_id: int, wanted: str, timeout: float = 30) -> dict[str, object]:
    import time

    deadline = time.monotonic() + timeout
    while (job := site.get(f"/api/v1/jobs/{job_id}").json())["status"] != wanted:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def test_a_did_not_at_the_site_waits_for_its_replication_then_stages(
    replicating_site: LiveService, catalogue: Catalogue
) -> None:
    data = os.urandom(5000)
    catalogue.other.add_file("sky", "wanted.fits", data)
    site = replicating_site
    refused = stage_did(site, "local_copy", "val", "sky:wanted.fits", "wanted.fits")
    assert refused.status_code == 404 and refused.json()["code"] == "not_at_site", refused.text

    asked = ask_replication(site, "val", "sky:wanted.fits", "wanted.fits")
    assert asked.status_code == 202 and asked.json()["status"] == "waiting", asked.text
    job_id = asked.json()["job_id"]
    rule_id = site.job_row(job_id)["replication_rule"]
    rule = catalogue.server.client().get_replication_rule(rule_id)
    assert (rule["rse_expression"], rule["name"], rule["account"]) == ("SITE_LOCAL", "wanted.fits", "root")
    assert 'skao_staging_jobs{method="local_copy",state="waiting"} 1.0' in httpx.get(f"{site.url}/metrics").text
    assert site.get(f"/api/v1/jobs/{job_id}").json()["status"] == "waiting"

    catalogue.site.arrive("sky", "wanted.fits", data)  # the transfer service did its work
    job = wait_status(site, job_id, "succeeded")
    assert job["checksum"] == adler(data)
    assert (site.user_area("val") / "wanted.fits").read_bytes() == data


def test_a_dataset_partly_at_the_site_stages_what_is_here_and_waits_for_the_rest(
    replicating_site: LiveService, catalogue: Catalogue
) -> None:
    here, far = os.urandom(300), os.urandom(400)
    catalogue.site.add_file("sky", "half-here.fits", here)
    catalogue.other.add_file("sky", "half-far.fits", far)
    client = catalogue.server.client()
    client.add_dataset("sky", "half")
    client.attach_dids("sky", "half", [{"scope": "sky", "name": n} for n in ("half-here.fits", "half-far.fits")])
    site = replicating_site
    item = {"method": "local_copy", "did": "sky:half", "relative_path": "half", "request_replication": True}
    accepted = httpx.post(f"{site.url}/api/v1/jobs", json={"username": "wes", "items": [item]})
    assert accepted.status_code == 202, accepted.text
    jobs = {item["job"]["did"]: item["job"] for item in accepted.json()["items"]}
    assert jobs["sky:half-far.fits"]["status"] == "waiting"
    wait_status(site, jobs["sky:half-here.fits"]["job_id"], "succeeded")
    rule_id = site.job_row(jobs["sky:half-far.fits"]["job_id"])["replication_rule"]
    assert client.get_replication_rule(rule_id)["name"] == "half", "one rule, on the dataset asked for"

    catalogue.site.arrive("sky", "half-far.fits", far)
    wait_status(site, jobs["sky:half-far.fits"]["job_id"], "succeeded")
    assert tree_files(site.user_area("wes") / "half") == {"half-here.fits": here, "half-far.fits": far}
    request = site.get(f"/api/v1/requests/{accepted.json()['request_id']}").json()
    assert request["state"] == "succeeded", request


def test_a_stuck_rule_a_late_replica_and_a_cancelled_wait_end_the_job(
    replicating_site: LiveService, catalogue: Catalogue
) -> None:
    for name in ("stuck.fits", "late.fits", "unwanted.fits"):
        catalogue.other.add_file("sky", name, name.encode())
    site = replicating_site
    stuck, late, unwanted = (
        ask_replication(site, "xia", f"sky:{name}", name).json()["job_id"]
        for name in ("stuck.fits", "late.fits", "unwanted.fits")
    )
    catalogue.server.client().update_replication_rule(site.job_row(stuck)["replication_rule"], {"state": "STUCK"})
    assert wait_status(site, stuck, "failed")["error_code"] == "replication_stuck"
    assert httpx.delete(f"{site.url}/api/v1/jobs/{unwanted}").status_code in (200, 202)
    assert site.get(f"/api/v1/jobs/{unwanted}").json()["status"] == "cancelled"
    assert wait_status(site, late, "failed", timeout=15)["error_code"] == "replication_timeout"
    assert not any(site.user_area("xia").rglob("*")), "nothing was staged"


def test_a_dataset_through_the_seed_endpoint_becomes_a_request(service: LiveService, catalogue: Catalogue) -> None:
    """The seed's endpoint answers a dataset or container with its request (202, Location), one job per file."""
    response = stage_did(service, "local_copy", "yan", "sky:campaign", "campaign")
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/requests/{response.json()['request_id']}"
    assert sorted(item["job"]["relative_path"] for item in response.json()["items"]) == [
        "campaign/extra/c.fits",
        "campaign/survey/a.fits",
        "campaign/survey/b.fits",
    ]
    wait_request(service, response.json()["request_id"])
    assert tree_files(service.user_area("yan") / "campaign") == {
        "survey/a.fits": catalogue.files["a.fits"],
        "survey/b.fits": catalogue.files["b.fits"],
        "extra/c.fits": catalogue.files["c.fits"],
    }


def test_dids_arrive_in_the_users_jupyter_server(catalogue: Catalogue, tmp_path: Path) -> None:
    """jupyter_copy of a file DID (the seed endpoint) and of a dataset DID (bulk), through a real
    JupyterHub and the user's real Jupyter server's Contents API, verified against the catalogue."""
    from hub.harness import Hub

    hub = Hub(tmp_path / "hub")
    hub.start()
    try:
        hub.add_user("zed")
        server, site = reading(
            catalogue,
            tmp_path / "service",
            jupyterhub_url=hub.url,
            jupyterhub_api_token=hub.token,
            jupyter_spawn_timeout_seconds=60,
        )
        with server:
            single = stage_did(site, "jupyter_copy", "zed", "sky:b.fits", "one/b.fits")
            item = {"method": "jupyter_copy", "did": "sky:survey", "relative_path": "survey"}
            bulk = httpx.post(f"{site.url}/api/v1/jobs", json={"username": "zed", "items": [item]})
            assert bulk.status_code == 202, bulk.text
            wait_request(site, bulk.json()["request_id"])
        assert single.status_code == 200 and single.json()["checksum"] == adler(catalogue.files["b.fits"]), single.text
        assert single.json()["destination"] == f"{hub.url}/user/zed/lab/tree/one/b.fits"
        assert (hub.home("zed") / "one" / "b.fits").read_bytes() == catalogue.files["b.fits"]
        assert tree_files(hub.home("zed") / "survey") == {
            "a.fits": catalogue.files["a.fits"],
            "b.fits": catalogue.files["b.fits"],
        }
    finally:
        hub.stop()
