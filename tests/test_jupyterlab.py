"""The JupyterLab panel (jupyterlab-extension/) end to end: a real JupyterHub spawning real JupyterLab
servers with the extension installed, a real staging service signing them in by their hub token, and
Playwright driving Debian's Chromium. Screenshots go to test-artifacts/screenshots/jupyterlab-*.png.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import LiveService, live_service
from hub.harness import Hub

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, LiveService]]:
    """A hub whose servers reach the staging service, and the service that signs them in by hub token."""
    hub = Hub(tmp_path_factory.mktemp("labhub"))
    server, live = live_service(
        tmp_path_factory.mktemp("labstaging"),
        jupyterhub_url=hub.url,
        jupyterhub_api_token=hub.token,
        jupyterhub_token_auth=True,
        auth_mode="header",
        trusted_proxies=["192.0.2.0/32"],  # nobody: only hub tokens sign in
        max_bytes_per_second=8 * MIB,
        jupyter_spawn_timeout_seconds=60,
        max_attempts=1,
    )
    live.write_source("obs/notes.txt", b"observation notes\n")
    live.write_source("obs/run1/vis.bin", os.urandom(2 * MIB))
    live.write_source("obs/run1/meta/scan.json", b'{"scan": 1}')
    live.write_source("obs/big.bin", os.urandom(160 * MIB))  # 20 s at the cap: cancelled long before
    hub.environment = {"SKAO_STAGING_URL": live.url}
    hub.start()
    try:
        with server:
            yield hub, live
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def lab(browser: Browser, site: tuple[Hub, LiveService]) -> Iterator[tuple[Page, str]]:
    """A new user signed in to the hub, in their JupyterLab, with the folder ``incoming`` open."""
    hub, _ = site
    name = f"l{uuid.uuid4().hex[:8]}"
    (hub.homes / name / "incoming").mkdir(parents=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill("any")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/user/{name}/**", timeout=60_000)
    page.goto(f"{hub.url}/user/{name}/lab/tree/incoming")
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
    news = page.get_by_role("button", name="No", exact=True)  # JupyterLab asks once about its news feed
    with suppress(PlaywrightTimeout):
        news.click(timeout=3_000)
    try:
        yield page, name
    finally:
        context.close()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"jupyterlab-{name}.png"))


def open_panel(page: Page) -> None:
    page.locator('li[data-id="skao-staging-panel"]').click()
    expect(page.get_by_role("heading", name="Data staging")).to_be_visible()


def show_file_browser(page: Page) -> None:
    """The file browser in the left sidebar (its tab toggles it, so it is clicked only when hidden)."""
    if not page.locator(".jp-DirListing-content").is_visible():
        page.locator('li[data-id="filebrowser"]').click()
    expect(page.locator(".jp-DirListing-content")).to_be_visible()


def browse_to(page: Page, live: LiveService, *folders: str) -> None:
    panel = page.locator(".skao-staging-panel")
    panel.get_by_role("button", name=str(live.storage)).click()
    for folder in folders:
        panel.get_by_role("button", name=folder, exact=False).click()
    expect(panel.get_by_test_id("storage-path")).to_have_text("/".join([str(live.storage), *folders]))


def test_stage_a_file_and_a_folder_into_the_open_folder(site: tuple[Hub, LiveService], lab: tuple[Page, str]) -> None:
    hub, live = site
    page, name = lab
    open_panel(page)
    panel = page.locator(".skao-staging-panel")
    expect(panel.get_by_text(f"as {name}")).to_be_visible()
    expect(panel.get_by_label("destination folder")).to_have_value("incoming")
    browse_to(page, live, "obs")
    panel.get_by_label("pick notes.txt").check()
    panel.get_by_label("pick run1").check()
    panel.get_by_role("button", name="Stage 2 items").click()
    jobs = panel.locator(".skao-staging-job")
    expect(jobs).to_have_count(2)
    expect(panel.locator(".skao-staging-succeeded")).to_have_count(2, timeout=60_000)
    home = hub.homes / name / "incoming"
    assert (home / "notes.txt").read_bytes() == b"observation notes\n"
    assert (home / "run1" / "vis.bin").read_bytes() == (live.storage / "obs/run1/vis.bin").read_bytes()
    assert (home / "run1" / "meta" / "scan.json").read_bytes() == b'{"scan": 1}'
    panel.get_by_role("button", name="notes.txt", exact=True).click()  # a click opens the staged file
    expect(page.locator(".jp-FileEditor").get_by_text("observation notes")).to_be_visible(timeout=20_000)
    shoot(page, "panel")
    show_file_browser(page)  # the panel refreshed it when the jobs ended
    listing = page.locator(".jp-DirListing-content")
    expect(listing.get_by_text("notes.txt", exact=True)).to_be_visible(timeout=10_000)
    expect(listing.get_by_text("run1", exact=True)).to_be_visible()


def test_stage_here_and_the_palette_open_the_panel(site: tuple[Hub, LiveService], lab: tuple[Page, str]) -> None:
    hub, _ = site
    page, name = lab
    (hub.homes / name / "incoming" / "night2").mkdir()
    show_file_browser(page)
    page.locator('[data-command="filebrowser:refresh"]').click()
    listing = page.locator(".jp-DirListing-content")
    listing.get_by_text("night2", exact=True).click(button="right")
    page.get_by_role("menuitem", name="Stage here").click()
    expect(page.get_by_role("heading", name="Data staging")).to_be_visible()
    expect(page.get_by_label("destination folder")).to_have_value("incoming/night2")
    show_file_browser(page)
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Stage data")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Data staging")).to_be_visible()

    page.keyboard.press("Control+Shift+C")  # the panel follows JupyterLab's dark theme
    page.keyboard.type("Use Theme: JupyterLab Dark")
    page.keyboard.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=10_000)
    panel_background = page.locator(".skao-staging-widget").evaluate("e => getComputedStyle(e).backgroundColor")
    theme_background = page.locator("body").evaluate(
        "e => { const probe = document.createElement('div'); probe.style.background = 'var(--jp-layout-color1)';"
        " e.appendChild(probe); const color = getComputedStyle(probe).backgroundColor; probe.remove(); return color; }"
    )
    assert panel_background == theme_background != "rgb(255, 255, 255)"
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=10_000)  # the theme has loaded
    shoot(page, "panel-dark")


def test_cancel_a_large_one_and_see_a_refusal(site: tuple[Hub, LiveService], lab: tuple[Page, str]) -> None:
    hub, live = site
    page, name = lab
    open_panel(page)
    panel = page.locator(".skao-staging-panel")
    browse_to(page, live, "obs")
    panel.get_by_label("pick big.bin").check()
    panel.get_by_role("button", name="Stage big.bin").click()
    job = panel.locator(".skao-staging-job").first
    expect(job.locator(".skao-staging-status")).to_have_text("running", timeout=30_000)
    job.get_by_role("button", name="Cancel").click()
    expect(job.locator(".skao-staging-status")).to_have_text("cancelled", timeout=5_000)
    assert not (hub.homes / name / "incoming" / "big.bin").exists()

    panel.get_by_label("destination folder").fill("../elsewhere")
    panel.get_by_label("pick notes.txt").check()
    panel.get_by_role("button", name="Stage notes.txt").click()
    expect(panel.locator(".skao-staging-messages")).to_contain_text(
        "notes.txt: relative_path must not contain '..' (invalid_path)"
    )
    shoot(page, "refusal")
