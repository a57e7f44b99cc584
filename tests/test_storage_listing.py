"""The read-only storage listing behind the frontend's source picker, /api/v1/me, and the UI at /."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from conftest import LiveService
from conftest import live_service as live


def listing(service: LiveService, path: str | None = None, **headers: str) -> httpx.Response:
    params = {} if path is None else {"path": path}
    return httpx.get(f"{service.url}/api/v1/storage", params=params, headers=headers)


def test_lists_roots_folders_and_files(service: LiveService) -> None:
    service.write_source("listing/b.bin", b"bb")
    service.write_source("listing/a.txt", b"a")
    service.write_source("listing/sub/c.txt", b"ccc")
    roots = listing(service).json()
    assert roots["path"] == "" and roots["parent"] is None
    assert [entry["path"] for entry in roots["entries"]] == [str(service.storage)]

    folder = listing(service, "listing").json()
    assert folder["path"] == str(service.storage / "listing") and folder["parent"] == str(service.storage)
    assert [(e["name"], e["type"], e["size"]) for e in folder["entries"]] == [
        ("sub", "folder", None),
        ("a.txt", "file", 1),
        ("b.bin", "file", 2),
    ]
    assert folder["truncated"] is False
    chosen = folder["entries"][1]["path"]
    assert listing(service, chosen).json()["entries"][0]["size"] == 1
    assert listing(service, str(service.storage)).json()["parent"] == ""
    few = httpx.get(f"{service.url}/api/v1/storage", params={"path": "listing", "limit": 2}).json()
    assert few["truncated"] is True and len(few["entries"]) == 2
    # the listed path stages as it is
    assert service.stage("symlink_copy", "lister", chosen, "picked.txt").status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("../", 400, "invalid_path"),
        ("/etc", 403, "source_outside_storage"),
        ("listing-missing", 404, "source_not_found"),
        ("a\nb", 400, "invalid_path"),
    ],
)
def test_refuses_what_staging_refuses(service: LiveService, path: str, status: int, code: str) -> None:
    response = listing(service, path)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert "/etc" not in response.json()["detail"] or path == "/etc"


def test_hides_symlinks_leading_outside(tmp_path: Path) -> None:
    server, service = live(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    service.write_source("linked/inside.txt", b"yes")
    os.symlink(outside, service.storage / "linked" / "escape")
    os.symlink(service.storage / "linked" / "inside.txt", service.storage / "linked" / "alias.txt")
    with server:
        names = [entry["name"] for entry in listing(service, "linked").json()["entries"]]
        through = listing(service, "linked/escape")
    assert names == ["alias.txt", "inside.txt"]
    assert through.status_code == 403 and through.json()["code"] == "source_outside_storage"


def test_group_roots_are_hidden_from_other_groups(tmp_path: Path) -> None:
    server, service = live(tmp_path, auth_mode="header", group_storage_roots={"team-a": [tmp_path / "storage" / "a"]})
    service.write_source("a/secret.bin", b"a")
    service.write_source("open/public.bin", b"o")
    as_bob = {"X-Forwarded-User": "bob", "X-Forwarded-Groups": "team-b"}
    as_ann = {"X-Forwarded-User": "ann", "X-Forwarded-Groups": "team-a"}
    with server:
        bob_sees = [entry["name"] for entry in listing(service, str(service.storage), **as_bob).json()["entries"]]
        ann_sees = [entry["name"] for entry in listing(service, str(service.storage), **as_ann).json()["entries"]]
        refused = listing(service, "a", **as_bob)
        me = httpx.get(f"{service.url}/api/v1/me", headers=as_ann).json()
        anonymous = httpx.get(f"{service.url}/api/v1/storage")
    assert bob_sees == ["open"] and ann_sees == ["a", "open"]
    assert refused.status_code == 403 and refused.json()["code"] == "source_forbidden"
    assert me == {
        "username": "ann",
        "authenticated": True,
        "is_admin": False,
        "admin_tools": False,
        "groups": ["team-a"],
    }
    assert anonymous.status_code == 401


def test_config_and_me_in_development_mode(service: LiveService) -> None:
    config = httpx.get(f"{service.url}/api/v1/config").json()
    assert config["auth_mode"] == "none" and config["file_tool_enabled"] is False
    me = httpx.get(f"{service.url}/api/v1/me").json()
    assert me["username"] is None and me["admin_tools"] is True


def test_frontend_page_or_build_instructions(service: LiveService) -> None:
    page = httpx.get(f"{service.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    from skao_staging.api.ui import WEB_DIR

    if (WEB_DIR / "index.html").is_file():
        assert '<div id="root">' in page.text
        asset = next((WEB_DIR / "assets").glob("*.js")).name
        served = httpx.get(f"{service.url}/assets/{asset}")
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
    else:
        assert "npm --prefix frontend ci" in page.text
    # API routes keep precedence over the static files
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.url}/api/v1/nothing-here").status_code == 404


def test_frontend_missing_explains_the_build(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from skao_staging.api.ui import mount_frontend

    app = FastAPI()
    mount_frontend(app, tmp_path / "no-build")

    async def get_page() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui") as client:
            return await client.get("/")

    page = asyncio.run(get_page())
    assert page.status_code == 200 and "npm --prefix frontend run build" in page.text
