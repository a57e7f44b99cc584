"""Signing in with JupyterHub tokens, checked against a real hub, beside the header and OIDC sign-ins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveService, live_service
from hub.harness import ADMIN_USER, Hub
from oidc_issuer import AUDIENCE, Issuer
from skao_staging.client import StagingClient


@pytest.fixture(scope="module")
def hubbed(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Header mode behind a proxy at 127.0.0.1, and JupyterHub tokens from anywhere; no answer cached."""
    server, live = live_service(
        tmp_path_factory.mktemp("hubbed"),
        auth_mode="header",
        trusted_proxies=["127.0.0.1/32"],
        jupyterhub_url=hub.url,
        jupyterhub_api_token=hub.token,
        jupyterhub_token_auth=True,
        jupyterhub_token_cache_seconds=0,
    )
    live.write_source("data.bin", b"payload")
    with server:
        yield live


def me(service: LiveService, authorization: str) -> httpx.Response:
    return service.get("/api/v1/me", headers={"Authorization": authorization})


def stage(service: LiveService, authorization: str, username: str, relative: str) -> httpx.Response:
    return httpx.post(
        f"{service.url}/api/v1/jobs",
        headers={"Authorization": authorization},
        json={
            "username": username,
            "items": [{"method": "local_copy", "local_path_on_storage": "data.bin", "relative_path": relative}],
        },
        timeout=30,
    )


def test_a_users_hub_token_signs_in_as_that_user_with_their_groups(
    hubbed: LiveService, hub: Hub, hub_user: str
) -> None:
    hub.add_group(f"g{hub_user}", [hub_user])
    token, _ = hub.user_token(hub_user)
    for authorization in (f"token {token}", f"Bearer {token}"):
        answer = me(hubbed, authorization)
        assert answer.status_code == 200, answer.text
        assert answer.json() | {"groups": None} == {
            "username": hub_user,
            "authenticated": True,
            "is_admin": False,
            "admin_tools": False,
            "groups": None,
        }
        assert answer.json()["groups"] == [f"g{hub_user}"]
    accepted = stage(hubbed, f"token {token}", hub_user, "mine.bin")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["items"][0]["error"] is None
    assert token not in hubbed.log_file.read_text()


def test_a_hub_token_acts_only_for_its_user(hubbed: LiveService, hub: Hub, hub_user: str) -> None:
    token, _ = hub.user_token(hub_user)
    refused = stage(hubbed, f"token {token}", "someone-else", "theirs.bin")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "forbidden"
    assert not (hubbed.users / "someone-else").exists()


def test_a_hub_admin_is_an_admin_here(hubbed: LiveService, hub: Hub) -> None:
    token, _ = hub.user_token(ADMIN_USER)
    answer = me(hubbed, f"token {token}")
    assert answer.json()["is_admin"] is True
    assert hubbed.get("/api/v1/usage/users", headers={"Authorization": f"token {token}"}).status_code == 200


def test_revoked_unknown_and_unscoped_tokens_are_401(hubbed: LiveService, hub: Hub, hub_user: str) -> None:
    token, token_id = hub.user_token(hub_user)
    assert me(hubbed, f"token {token}").status_code == 200
    hub.revoke_token(hub_user, token_id)
    for authorization in (f"token {token}", f"token {uuid.uuid4().hex}"):
        answer = me(hubbed, authorization)
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "invalid_token"
    unscoped, _ = hub.user_token(hub_user, scopes=["read:users:name!user"])
    answer = me(hubbed, f"token {unscoped}")
    assert answer.status_code == 401
    assert "access:services!service=staging" in answer.json()["detail"]


def test_a_single_user_servers_own_token_signs_in(hubbed: LiveService, hub: Hub, hub_user: str) -> None:
    """The token JupyterHub gives a spawned server (JUPYTERHUB_API_TOKEN), as the JupyterLab panel uses it."""
    token = hub.server_token(hub_user)
    answer = me(hubbed, f"token {token}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == hub_user
    with StagingClient(hubbed.url, token) as client:  # as a notebook in that server signs in
        assert client.me()["username"] == hub_user


def test_the_proxy_header_still_signs_in_beside_hub_tokens(hubbed: LiveService) -> None:
    answer = hubbed.get("/api/v1/me", headers={"X-Forwarded-User": "viaproxy"})
    assert answer.json()["username"] == "viaproxy"
    assert hubbed.get("/api/v1/me").status_code == 401


def test_oidc_and_hub_tokens_at_one_site(hub: Hub, issuer: Issuer, hub_user: str, tmp_path: Path) -> None:
    server, live = live_service(
        tmp_path,
        auth_mode="oidc",
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        jupyterhub_url=hub.url,
        jupyterhub_token_auth=True,
    )
    token, _ = hub.user_token(hub_user)
    with server:
        assert me(live, f"Bearer {issuer.token('alice')}").json()["username"] == "alice"
        assert me(live, f"token {token}").json()["username"] == hub_user
        assert me(live, "Bearer not-a-jwt-nor-a-hub-token").json()["code"] == "invalid_token"


def test_an_unreachable_hub_is_503(hub: Hub, tmp_path: Path) -> None:
    from conftest import free_port

    server, live = live_service(
        tmp_path, auth_mode="header", jupyterhub_url=f"http://127.0.0.1:{free_port()}", jupyterhub_token_auth=True
    )
    with server:
        answer = me(live, f"token {uuid.uuid4().hex}")
    assert answer.status_code == 503
    assert answer.json()["code"] == "jupyter_unavailable"
