"""Identity: OIDC bearer tokens from a local issuer (keys made at test time), a trusted proxy header,
and the development mode's refusal to listen beyond loopback."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from cluster import BIN, free_port
from conftest import LiveService
from conftest import live_service as live
from oidc_issuer import AUDIENCE, Issuer


@pytest.fixture(scope="module")
def oidc(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    server, service = live(
        tmp_path_factory.mktemp("oidc"),
        auth_mode="oidc",
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_jwks_refresh_cooldown_seconds=0,
        oidc_leeway_seconds=5,
    )
    service.write_source("data.bin", b"payload")
    with server:
        yield service


def stage(
    service: LiveService,
    token: str | None,
    username: str | None = None,
    relative: str = "d.bin",
    method: str = "local_copy",
) -> httpx.Response:
    params = {"method": method, **({"username": username} if username else {})}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{service.url}/stage_data",
        params=params,
        headers=headers,
        timeout=30,
        json={"local_path_on_storage": "data.bin", "relative_path": relative},
    )


def test_a_valid_token_stages_into_the_callers_area(oidc: LiveService, issuer: Issuer) -> None:
    response = stage(oidc, issuer.token("alice"), relative="mine.bin")
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "alice"
    assert (oidc.users / "alice" / "mine.bin").read_bytes() == b"payload"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("none", "unauthenticated"),
        ("expired", "invalid_token"),
        ("audience", "invalid_token"),
        ("issuer", "invalid_token"),
        ("signature", "invalid_token"),
        ("unknown_kid", "invalid_token"),
        ("alg_none", "invalid_token"),
        ("no_username", "invalid_token"),
        ("garbage", "invalid_token"),
    ],
)
def test_bad_tokens_are_refused_and_recorded(oidc: LiveService, issuer: Issuer, case: str, code: str) -> None:
    tokens = {
        "none": None,
        "expired": issuer.token(exp=int(time.time()) - 60),
        "audience": issuer.token(aud="another-service"),
        "issuer": issuer.token(iss="http://127.0.0.1:1/evil"),
        "signature": issuer.token(signer="forged") if "forged" in issuer.keys else None,
        "unknown_kid": issuer.token(kid="never-published") if "never-published" in issuer.keys else None,
        "alg_none": jwt.encode(
            {"iss": issuer.url, "aud": AUDIENCE, "exp": int(time.time()) + 60, "preferred_username": "alice"},
            None,
            algorithm="none",
        ),
        "no_username": issuer.token(None),
        "garbage": "not.a.token",
    }
    if case in ("signature", "unknown_kid"):
        issuer.add_key("forged" if case == "signature" else "never-published", publish=False)
        tokens[case] = issuer.token(signer="forged") if case == "signature" else issuer.token(kid="never-published")
    response = stage(oidc, tokens[case], relative=f"{case}.bin")
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"
    row = oidc.job_row(response.json()["job_id"])
    assert (row["status"], row["error_code"]) == ("failed", code)
    assert not any(oidc.users.rglob(f"{case}.bin"))


def test_denials_are_logged_and_tokens_never_are(oidc: LiveService, issuer: Issuer) -> None:
    token = issuer.token("alice")
    stage(oidc, token, relative="logged.bin")
    stage(oidc, issuer.token("alice"), username="bob", relative="x.bin")
    httpx.get(f"{oidc.url}/api/v1/logs", headers={"Authorization": f"Bearer {token}"})
    log = oidc.log_file.read_text()
    assert "denied POST /stage_data" in log and "code=forbidden" in log
    assert "denied GET /api/v1/logs" in log and "code=admin_only" in log
    assert token not in log and "eyJ" not in log, "no bearer token in the log"


def test_key_rotation_is_followed(oidc: LiveService, issuer: Issuer) -> None:
    issuer.add_key("k2")  # published after the service cached the first key set
    response = stage(oidc, issuer.token("alice", kid="k2"), relative="rotated.bin")
    assert response.status_code == 200, response.text


def test_acting_for_someone_else(oidc: LiveService, issuer: Issuer) -> None:
    refused = stage(oidc, issuer.token("alice"), username="bob", relative="theft.bin")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert oidc.job_row(refused.json()["job_id"])["error_code"] == "forbidden"
    assert not (oidc.users / "bob" / "theft.bin").exists()
    admin = issuer.token("root-of-staging", groups=["/staging-admins"])
    granted = stage(oidc, admin, username="bob", relative="for-bob.bin")
    assert granted.status_code == 200 and granted.json()["username"] == "bob"


def test_jobs_are_private_except_to_admins(oidc: LiveService, issuer: Issuer) -> None:
    carol = stage(oidc, issuer.token("carol"), relative="c.bin").json()["job_id"]
    as_dave = {"Authorization": f"Bearer {issuer.token('dave')}"}
    as_admin = {"Authorization": f"Bearer {issuer.token('boss', groups=['staging-admins'])}"}
    assert httpx.get(f"{oidc.url}/api/v1/jobs/{carol}", headers=as_dave).status_code == 404
    assert httpx.delete(f"{oidc.url}/api/v1/jobs/{carol}", headers=as_dave).status_code == 404
    assert httpx.get(f"{oidc.url}/api/v1/jobs", params={"username": "carol"}, headers=as_dave).status_code == 403
    own = httpx.get(f"{oidc.url}/api/v1/jobs", headers=as_dave).json()
    assert all(job["username"] == "dave" for job in own["jobs"])
    assert httpx.get(f"{oidc.url}/api/v1/jobs/{carol}", headers=as_admin).json()["username"] == "carol"
    assert httpx.get(f"{oidc.url}/api/v1/jobs/{carol}").status_code == 401

    request = httpx.get(f"{oidc.url}/api/v1/jobs/{carol}", headers=as_admin).json()["request_id"]
    hidden = httpx.get(f"{oidc.url}/api/v1/requests/{request}", headers=as_dave)
    assert hidden.status_code == 404 and hidden.json()["code"] == "request_not_found"
    as_carol = {"Authorization": f"Bearer {issuer.token('carol')}"}
    for headers in (as_carol, as_admin):
        state = httpx.get(f"{oidc.url}/api/v1/requests/{request}", headers=headers)
        assert state.status_code == 200 and state.json()["state"] == "succeeded", state.text


def test_issuer_down_is_503(tmp_path: Path, issuer: Issuer) -> None:
    server, service = live(
        tmp_path, auth_mode="oidc", oidc_issuer=f"http://127.0.0.1:{free_port()}/realm", oidc_audience=AUDIENCE
    )
    service.write_source("data.bin", b"x")
    with server:
        response = stage(service, issuer.token("alice"))
    assert response.status_code == 503 and response.json()["code"] == "oidc_unavailable"


def test_hmac_token_is_refused(oidc: LiveService, issuer: Issuer) -> None:
    claims = {"iss": issuer.url, "aud": AUDIENCE, "exp": int(time.time()) + 60, "preferred_username": "alice"}
    forged = jwt.encode(claims, "a-shared-secret-of-32-characters", algorithm="HS256", headers={"kid": "k1"})
    response = stage(oidc, forged, relative="hmac.bin")
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


def test_trusted_proxy_header(tmp_path: Path) -> None:
    server, service = live(tmp_path / "trusted", auth_mode="header")
    service.write_source("data.bin", b"via proxy")
    with server:
        ok = httpx.post(
            f"{service.url}/stage_data",
            params={"method": "local_copy"},
            headers={"X-Forwarded-User": "erin"},
            json={"local_path_on_storage": "data.bin", "relative_path": "p.bin"},
        )
        missing = httpx.post(
            f"{service.url}/stage_data",
            params={"method": "local_copy"},
            json={"local_path_on_storage": "data.bin", "relative_path": "q.bin"},
        )
    assert ok.status_code == 200 and (service.users / "erin" / "p.bin").read_bytes() == b"via proxy"
    assert missing.status_code == 401

    server, service = live(tmp_path / "untrusted", auth_mode="header", trusted_proxies=["10.0.0.0/8"])
    service.write_source("data.bin", b"x")
    with server:
        spoofed = httpx.post(
            f"{service.url}/stage_data",
            params={"method": "local_copy"},
            headers={"X-Forwarded-User": "erin"},
            json={"local_path_on_storage": "data.bin", "relative_path": "s.bin"},
        )
    assert spoofed.status_code == 401 and spoofed.json()["code"] == "unauthenticated"


def test_development_mode_stays_on_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "STAGING_AUTH_MODE=none" in result.stdout


def test_groups_limit_the_storage_they_read(issuer: Issuer, tmp_path: Path) -> None:
    server, service = live(
        tmp_path,
        auth_mode="oidc",
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        group_storage_roots={"team-a": [tmp_path / "storage" / "a"]},
    )
    service.write_source("a/secret.bin", b"team a only")
    service.write_source("open/public.bin", b"everyone")

    def stage_as(token: str, source: str, relative: str) -> httpx.Response:
        return httpx.post(
            f"{service.url}/stage_data",
            params={"method": "local_copy"},
            headers={"Authorization": f"Bearer {token}"},
            json={"local_path_on_storage": source, "relative_path": relative},
        )

    with server:
        member = stage_as(issuer.token("ann", groups=["/team-a"]), "a/secret.bin", "s.bin")
        outsider = stage_as(issuer.token("otto", groups=["/team-b"]), "a/secret.bin", "s.bin")
        download = httpx.get(
            f"{service.url}/api/v1/download",
            params={"path": "a/secret.bin"},
            headers={"Authorization": f"Bearer {issuer.token('otto')}"},
        )
        public = stage_as(issuer.token("otto", groups=["/team-b"]), "open/public.bin", "p.bin")
        admin = stage_as(issuer.token("root", groups=["staging-admins"]), "a/secret.bin", "s.bin")
    assert member.status_code == 200, member.text
    assert outsider.status_code == 403 and outsider.json()["code"] == "source_forbidden"
    assert service.job_row(outsider.json()["job_id"])["error_code"] == "source_forbidden"
    assert download.status_code == 403
    assert public.status_code == 200
    assert admin.status_code == 200
    assert not (service.users / "otto" / "s.bin").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_owner_from_token_claims(issuer: Issuer, tmp_path: Path) -> None:
    server, service = live(
        tmp_path,
        auth_mode="oidc",
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_uid_claim="uidNumber",
        oidc_gid_claim="gidNumber",
        owner_gid=100,
    )
    service.write_source("f.bin", b"f")
    with server:
        response = httpx.post(
            f"{service.url}/stage_data",
            params={"method": "local_copy"},
            headers={"Authorization": f"Bearer {issuer.token('vera', uidNumber=2001)}"},
            json={"local_path_on_storage": "f.bin", "relative_path": "f.bin"},
        )
    assert response.status_code == 200, response.text
    staged = service.user_area("vera") / "f.bin"
    assert (staged.stat().st_uid, staged.stat().st_gid) == (2001, 100), "claim first, configuration after"


def test_admin_tools_are_for_admins(issuer: Issuer, tmp_path: Path) -> None:
    server, service = live(
        tmp_path, auth_mode="oidc", oidc_issuer=issuer.url, oidc_audience=AUDIENCE, enable_file_tool=True
    )
    user = {"Authorization": f"Bearer {issuer.token('ulla')}"}
    admin = {"Authorization": f"Bearer {issuer.token('root', groups=['staging-admins'])}"}
    with server:
        assert httpx.get(f"{service.url}/api/v1/logs", headers=user).json()["code"] == "admin_only"
        assert httpx.get(f"{service.url}/api/v1/logs/stream", headers=user).status_code == 403
        created = httpx.post(f"{service.url}/api/v1/files", headers=user, json={"path": "u.txt", "text": "u"})
        assert created.status_code == 403 and not (service.storage / "u.txt").exists()
        assert httpx.get(f"{service.url}/api/v1/logs", headers=admin).status_code == 200
        made = httpx.post(f"{service.url}/api/v1/files", headers=admin, json={"path": "a.txt", "text": "a"})
        assert made.status_code == 201


def test_the_tokens_email_claim_is_where_notices_go(oidc: LiveService, issuer: Issuer) -> None:
    from skao_staging.db import Database

    assert stage(oidc, issuer.token("erin", email="erin@example.org"), relative="e.bin").status_code == 200
    assert stage(oidc, issuer.token("fay", email="not an address"), relative="f.bin").status_code == 200
    db = Database(oidc.database_url)
    try:
        with db.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT username, email FROM staging_contacts").all()
    finally:
        db.dispose()
    assert [tuple(row) for row in rows] == [("erin", "erin@example.org")]  # a malformed claim is ignored
