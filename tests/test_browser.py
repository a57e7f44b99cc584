"""End to end in a real headless Chromium (Debian's, driven by Playwright) against real processes:
an API serving the built frontend and a separate worker, on MariaDB, with real storage.

Screenshots of every view go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from cluster import Cluster, drop_database, fresh_database
from oidc_issuer import AUDIENCE, Issuer
from skao_staging.api.ui import WEB_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
MIB = 1024 * 1024
RATE = 8 * MIB  # the bandwidth cap makes copies slow enough to watch and to cancel

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@contextmanager
def running_site(base: Path, database_url: str, **settings: str) -> Iterator[tuple[Cluster, str]]:
    """An API process serving the built frontend and a worker process, on real storage."""
    assert (WEB_DIR / "index.html").is_file(), "build the frontend first: npm --prefix frontend run build"
    cluster = Cluster(base, database_url, max_bytes_per_second=str(RATE), log_level="INFO", **settings)
    try:
        cluster.migrate()
        api = cluster.start_api()
        cluster.start_worker(concurrency=2)
        yield cluster, api
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    """Development mode (no sign-in) on MariaDB, with the file tool."""
    name, url = fresh_database()
    try:
        with running_site(
            tmp_path_factory.mktemp("browser"), url, enable_file_tool="true", file_tool_max_bytes=str(4 * MIB)
        ) as running:
            yield running
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium (scripts/test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        accept_downloads=True,
        extra_http_headers=getattr(request, "param", None),
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    yield page
    context.close()
    unexpected = [text for text in problems if "status of 4" not in text]  # refused requests log a console line
    assert not unexpected, f"{request.node.name}: the page reported errors: {unexpected}"


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def stage_form(page: Page, api: str, username: str, method: str = "local_copy") -> None:
    page.goto(f"{api}/#/stage")
    page.get_by_label("Method").select_option(method)
    page.get_by_label("Username").fill(username)


def job_card(page: Page, job_id: int | str) -> object:
    return page.get_by_role("listitem", name=re.compile(rf"^Job {job_id},"))


def test_stage_a_file_through_the_form_and_watch_it_succeed(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    data = os.urandom(24 * MIB)
    cluster.source("obs/run1/visibilities.ms", data)
    stage_form(page, api, "astrid")
    page.get_by_role("button", name="Browse…").click()
    picker = page.get_by_role("dialog", name="Choose a source")
    picker.get_by_role("button", name="obs").click()
    picker.get_by_role("button", name="run1").click()
    shoot(page, "stage-picker")
    picker.get_by_role("button", name=re.compile("visibilities.ms")).click()
    expect(page.get_by_label("Source on storage")).to_have_value(str(cluster.storage / "obs/run1/visibilities.ms"))
    source_field = page.get_by_label("Source on storage")
    expect(source_field).to_be_focused()  # the file name, not the root's prefix, is in view
    page.wait_for_function(
        "el => el.selectionStart === el.value.length && el.scrollLeft > 0", arg=source_field.element_handle()
    )
    expect(page.get_by_label("Destination in the user area")).to_have_value("visibilities.ms")
    page.get_by_label("Destination in the user area").fill("run1/visibilities.ms")
    shoot(page, "stage")
    page.get_by_role("button", name="Stage", exact=True).click()

    expect(page).to_have_url(re.compile("#/jobs$"))
    card = page.get_by_role("listitem", name=re.compile(r"^Job \d+, Running"))
    expect(card).to_be_visible(timeout=15_000)
    bar = card.get_by_role("progressbar")
    seen_partial = False
    for _ in range(100):  # watch the bar move while the copy runs (about 3 s at the cap)
        value, top = bar.get_attribute("value"), bar.get_attribute("max")
        if value and top and 0 < int(value) < int(top):
            seen_partial = True
            shoot(page, "jobs-running")
            break
        page.wait_for_timeout(50)
    assert seen_partial, "the progress bar never showed a partial copy"
    expect(card).to_contain_text(re.compile(r"MiB of 24 MiB \(\d+%\) · \d+(\.\d)? MiB/s"))
    rate = re.search(r"· ([\d.]+) MiB/s", card.inner_text())
    assert rate and float(rate[1]) < 4 * RATE / MIB, f"implausible throughput under an {RATE // MIB} MiB/s cap: {rate}"
    done = page.get_by_role("listitem", name=re.compile(r"^Job \d+, Succeeded"))
    expect(done).to_be_visible(timeout=30_000)
    expect(done).to_contain_text("24 MiB of 24 MiB (100%)")
    expect(done).to_contain_text("read-only")
    assert (cluster.users / "astrid" / "run1" / "visibilities.ms").read_bytes() == data
    shoot(page, "jobs")


def test_the_operation_appears_in_the_log_viewer(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    cluster.source("logged.txt", b"logged")
    page.goto(f"{api}/#/logs")
    expect(page.get_by_role("status").filter(has_text="Live.")).to_be_visible()
    job_id = cluster.submit(
        api, "logan", [{"method": "local_copy", "local_path_on_storage": "logged.txt", "relative_path": "l"}]
    )
    job_id = job_id["items"][0]["job"]["job_id"]
    lines = page.get_by_label("Log lines")
    expect(lines).to_contain_text(f"job {job_id} succeeded", timeout=15_000)  # live, not reloaded

    page.get_by_label("Search").fill(f"job {job_id} ")
    expect(lines.locator(".log-line").first).to_contain_text(f"job {job_id} ")
    for line in lines.locator(".log-line").all_inner_texts():
        assert f"job {job_id} " in line
    page.get_by_label("Search").fill("")
    page.get_by_label("Level at least").select_option("WARNING")
    expect(page.get_by_role("status").filter(has_text="Live.")).to_be_visible()
    for line in lines.locator(".log-line").all_inner_texts():
        assert " INFO " not in line and " DEBUG " not in line
    page.get_by_label("Level at least").select_option("")

    page.get_by_role("button", name="Pause").click()
    cluster.source("while-paused.txt", b"p")
    paused_job = cluster.submit(
        api, "logan", [{"method": "local_copy", "local_path_on_storage": "while-paused.txt", "relative_path": "p"}]
    )["items"][0]["job"]["job_id"]
    resume = page.get_by_role("button", name=re.compile(r"Resume \(\d+ new\)"))
    expect(resume).to_be_visible(timeout=15_000)
    assert f"job {paused_job} " not in lines.inner_text()
    shoot(page, "logs-paused")
    resume.click()
    expect(lines).to_contain_text(f"job {paused_job} ", timeout=15_000)
    shoot(page, "logs")


def test_a_bad_path_shows_the_error_in_words(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    stage_form(page, api, "bertha")
    page.get_by_label("Source on storage").fill("no/such/file.fits")
    page.get_by_role("button", name="Stage", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Item 1: source 'no/such/file.fits' does not exist")
    expect(alert).to_contain_text("(source_not_found)")
    assert "{" not in alert.inner_text()
    page.get_by_label("Source on storage").fill("../../etc/passwd")
    page.get_by_role("button", name="Stage", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("must not contain '..'")
    shoot(page, "stage-error")
    page.goto(f"{api}/#/jobs")
    page.get_by_label("User").fill("bertha")
    failed = page.get_by_role("listitem", name=re.compile(r"^Job \d+, Failed")).filter(has_text="no/such/file.fits")
    expect(failed).to_contain_text("The source does not exist.")  # recorded, and explained
    expect(failed.get_by_role("button", name=re.compile("Retry"))).to_be_visible()
    assert not (cluster.users / "bertha").exists()


def test_cancel_a_running_job(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    cluster.source("long.bin", os.urandom(64 * MIB))  # 8 s at the cap
    stage_form(page, api, "cyril")
    page.get_by_label("Source on storage").fill("long.bin")
    page.get_by_role("button", name="Stage", exact=True).click()
    running = page.get_by_role("listitem", name=re.compile(r"^Job \d+, Running"))
    expect(running).to_be_visible(timeout=15_000)
    job_id = re.search(r"Job (\d+)", running.get_attribute("aria-label") or "")
    assert job_id
    running.get_by_role("button", name=f"Cancel job {job_id[1]}").click()
    cancelled = job_card(page, job_id[1])
    expect(cancelled).to_have_attribute("aria-label", re.compile("Cancelled"), timeout=10_000)
    expect(cancelled.get_by_role("button", name=f"Retry job {job_id[1]}")).to_be_visible()
    shoot(page, "jobs-cancelled")
    assert httpx.get(f"{api}/api/v1/jobs/{job_id[1]}").json()["status"] == "cancelled"
    assert not (cluster.users / "cyril" / "long.bin").exists()
    assert not [p for p in (cluster.users / "cyril").rglob("*") if p.is_file()], "a partial file was left"
    cancelled.get_by_role("button", name=f"Retry job {job_id[1]}").click()
    expect(cancelled).to_have_attribute("aria-label", re.compile("Queued|Running"), timeout=10_000)
    assert httpx.get(f"{api}/api/v1/jobs/{job_id[1]}").json()["status"] in ("queued", "running")
    cancelled.get_by_role("button", name=f"Cancel job {job_id[1]}").click()  # and stop it again
    expect(cancelled).to_have_attribute("aria-label", re.compile("Cancelled"), timeout=10_000)


def test_direct_download_lands_as_a_file(site: tuple[Cluster, str], page: Page, tmp_path: Path) -> None:
    cluster, api = site
    data = os.urandom(3 * MIB + 17)
    cluster.source("images/cube.fits", data)
    stage_form(page, api, "dora", method="direct_download")
    page.get_by_label("Source on storage").fill("images/cube.fits")
    with page.expect_download() as started:
        page.get_by_role("button", name="Download").click()
    download = started.value
    assert download.suggested_filename == "cube.fits"
    saved = tmp_path / "cube.fits"
    download.save_as(saved)
    assert saved.read_bytes() == data
    expect(page.get_by_role("status")).to_contain_text("Downloading cube.fits")
    jobs = httpx.get(f"{api}/api/v1/jobs", params={"username": "dora", "method": "direct_download"}).json()
    assert jobs["jobs"][0]["status"] == "succeeded" and jobs["jobs"][0]["bytes_done"] == len(data)
    page.get_by_label("Source on storage").fill("images")
    with page.expect_download() as started:
        page.get_by_role("button", name="Download").click()
    folder = started.value
    assert folder.suggested_filename == "images.zip"
    folder.save_as(tmp_path / "images.zip")
    with zipfile.ZipFile(tmp_path / "images.zip") as archive:
        assert archive.read("images/cube.fits") == data


def test_file_tool_creates_a_file_to_stage(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    page.goto(f"{api}/#/files")
    page.get_by_label("Path in the storage root").fill("made/by-ui.txt")
    page.get_by_label("Text").check()
    page.get_by_role("textbox", name="Text").fill("hello from the browser")
    page.get_by_role("button", name="Create file").click()
    expect(page.get_by_role("status")).to_contain_text("Created made/by-ui.txt (22 B)")
    shoot(page, "files")
    assert (cluster.storage / "made" / "by-ui.txt").read_text() == "hello from the browser"
    page.get_by_role("button", name="Create file").click()
    expect(page.get_by_role("alert")).to_contain_text("exists already")
    page.get_by_label("Random bytes").check()
    page.get_by_label("Path in the storage root").fill("made/too-big.bin")
    page.get_by_label("Size").fill("5")
    page.get_by_label("Unit").select_option("MiB")
    expect(page.get_by_role("button", name="Create file")).to_be_disabled()
    page.get_by_label("Size").fill("1")
    page.get_by_role("button", name="Create file").click()
    expect(page.get_by_role("status")).to_contain_text("(1.0 MiB)")
    assert (cluster.storage / "made" / "too-big.bin").stat().st_size == MIB
    page.get_by_role("button", name="Stage this file").click()
    expect(page.get_by_label("Source on storage")).to_have_value("made/too-big.bin")


def test_keyboard_and_a_narrow_window(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    cluster.source("kbd/a-first.txt", b"keyboard")
    page.goto(f"{api}/")
    expect(page.get_by_role("heading", name="Stage data")).to_be_visible()
    page.get_by_role("button", name="Browse…").focus()  # the source picker, by keyboard only
    page.keyboard.press("Enter")
    picker = page.get_by_role("dialog", name="Choose a source")
    expect(picker.get_by_role("button", name="kbd")).to_be_visible()
    for _ in range(20):
        if page.evaluate("document.activeElement.textContent.trim()") == "kbd":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # into kbd/: its first entry gets the focus
    expect(picker.get_by_role("button", name=re.compile("a-first.txt"))).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Source on storage")).to_have_value(str(cluster.storage / "kbd" / "a-first.txt"))
    expect(page.get_by_label("Source on storage")).to_be_focused()
    page.get_by_label("Username").fill("kit")
    page.get_by_label("Destination in the user area").press("Enter")  # the form submits from the keyboard
    expect(page.get_by_role("listitem", name=re.compile(r"^Job \d+, Succeeded"))).to_be_visible(timeout=15_000)
    assert (cluster.users / "kit" / "a-first.txt").read_bytes() == b"keyboard"
    page.goto(f"{api}/")
    expect(page.get_by_role("link", name="Jobs")).to_be_visible()  # the views are shown once the session loaded
    for _ in range(10):  # Tab reaches the views' links
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Jobs":
            break
    expect(page.get_by_role("link", name="Jobs")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.get_by_label("State").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == page.get_by_label("Method").get_attribute("id")
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(f"{api}/#/stage")
    expect(page.get_by_role("heading", name="Stage data")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 400px"
    shoot(page, "stage-narrow")
    page.goto(f"{api}/#/jobs")
    page.get_by_label("User").fill("kit")
    expect(page.get_by_role("list", name="Jobs, newest first").get_by_role("listitem").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    shoot(page, "jobs-narrow")


# --- signed in -------------------------------------------------------------------------------------

PROXY_HEADERS = {"X-Forwarded-User": "hana", "X-Forwarded-Groups": "astronomers"}


@pytest.fixture(scope="module")
def proxied_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    """Behind a sign-in proxy (header mode); the browser context sends the proxy's headers."""
    base = tmp_path_factory.mktemp("proxied")
    with running_site(base, f"sqlite:///{base / 'staging.db'}", auth_mode="header") as running:
        yield running


@pytest.mark.parametrize("page", [PROXY_HEADERS], indirect=True)
def test_signed_in_through_a_proxy(proxied_site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = proxied_site
    cluster.source("mine.fits", b"for hana")
    cluster.source("theirs.fits", b"for ivan")
    other = httpx.post(
        f"{api}/api/v1/jobs",
        headers={"X-Forwarded-User": "ivan"},
        json={"items": [{"method": "local_copy", "local_path_on_storage": "theirs.fits", "relative_path": "t"}]},
    )
    assert other.status_code == 202
    page.goto(f"{api}/")
    expect(page.get_by_text("Signed in as")).to_have_text("Signed in as hana")
    expect(page.get_by_label("Username")).to_have_value("hana")
    expect(page.get_by_label("Username")).to_have_attribute("readonly", "")
    for tool in ("Logs", "Files"):  # admin tools are not offered to a user
        expect(page.get_by_role("link", name=tool)).to_have_count(0)
    page.get_by_label("Source on storage").fill("mine.fits")
    page.get_by_role("button", name="Stage", exact=True).click()
    expect(page.get_by_role("listitem", name=re.compile(r"^Job \d+, Succeeded"))).to_be_visible(timeout=15_000)
    expect(page.get_by_label("User")).to_have_value("hana")
    jobs = page.get_by_role("list", name="Jobs, newest first").get_by_role("listitem")
    expect(jobs).to_have_count(1)  # ivan's job is not shown
    assert (cluster.users / "hana" / "mine.fits").read_bytes() == b"for hana"
    shoot(page, "jobs-signed-in")
    page.goto(f"{api}/#/logs")  # typed by hand: still refused, and said in words
    expect(page.get_by_role("heading", name="Stage data")).to_be_visible()
    assert httpx.get(f"{api}/api/v1/logs", headers=PROXY_HEADERS).json()["code"] == "admin_only"


@pytest.fixture(scope="module")
def oidc_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str, Issuer]]:
    issuer = Issuer()
    issuer.thread.start()
    base = tmp_path_factory.mktemp("oidc")
    try:
        with running_site(
            base,
            f"sqlite:///{base / 'staging.db'}",
            auth_mode="oidc",
            oidc_issuer=issuer.url,
            oidc_audience=AUDIENCE,
        ) as (cluster, api):
            yield cluster, api, issuer
    finally:
        issuer.server.shutdown()


def test_sign_in_with_a_token_then_stage_watch_and_download(
    oidc_site: tuple[Cluster, str, Issuer], page: Page, tmp_path: Path
) -> None:
    cluster, api, issuer = oidc_site
    data = os.urandom(2 * MIB)
    cluster.source("tokened.bin", data)
    page.goto(f"{api}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Access token from your identity provider").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # refused, asked again
    shoot(page, "sign-in")
    page.get_by_label("Access token from your identity provider").fill(issuer.token("olga"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as")).to_have_text("Signed in as olga")
    page.get_by_label("Source on storage").fill("tokened.bin")
    page.get_by_role("button", name="Stage", exact=True).click()
    # the live stream carries the token too (fetch, not EventSource): the running job turns to succeeded
    expect(page.get_by_role("listitem", name=re.compile(r"^Job \d+, Succeeded"))).to_be_visible(timeout=15_000)
    assert (cluster.users / "olga" / "tokened.bin").read_bytes() == data
    page.goto(f"{api}/#/stage")
    page.get_by_label("Method").select_option("direct_download")
    page.get_by_label("Source on storage").fill("tokened.bin")
    with page.expect_download() as started:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "tokened.bin"
    started.value.save_as(saved)
    assert saved.read_bytes() == data
    jobs = httpx.get(f"{api}/api/v1/jobs", headers={"Authorization": f"Bearer {issuer.token('olga')}"}).json()
    assert {job["method"] for job in jobs["jobs"]} == {"local_copy", "direct_download"}


def test_the_api_docs_work_offline_under_the_sites_policy(site: tuple[Cluster, str], page: Page) -> None:
    """/docs lists the operations and runs one ("Try it out" on GET /healthz), with every asset from
    the service itself and no Content-Security-Policy violation (the page fixture fails on any)."""
    _, api = site
    external: list[str] = []
    page.on("request", lambda request: external.append(request.url) if not request.url.startswith(api) else None)
    page.goto(f"{api}/docs")
    expect(page.get_by_text("/stage_data", exact=True).first).to_be_visible(timeout=20_000)
    operation = page.locator(".opblock", has=page.get_by_text("/healthz", exact=True))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table tr.response td.response-col_status")
    expect(live).to_have_text("200", timeout=20_000)
    expect(operation.get_by_text('"status": "ok"')).to_be_visible()
    shoot(page, "api-docs")

    assert external == [], f"the docs loaded assets from elsewhere: {external}"


def test_the_stage_forms_controls_share_one_grid(site: tuple[Cluster, str], page: Page) -> None:
    _, api = site
    stage_form(page, api, "gina")
    width = lambda locator: locator.bounding_box()["width"]  # noqa: E731
    method, username = page.get_by_label("Method"), page.get_by_label("Username")
    assert abs(width(method) - width(username)) <= 1, (width(method), width(username))
    source = page.locator(".item .field.source")
    destination = page.get_by_label("Destination in the user area")
    assert abs(width(source) - width(destination)) <= 1, (width(source), width(destination))
    assert abs(width(source) - width(method)) <= 40, "the items line up with the fields above (inside the fieldset)"
    shoot(page, "stage-grid")


def test_stage_a_dataset_by_did_and_see_it_finish(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser, request: pytest.FixtureRequest
) -> None:
    """A site with a real Rucio: type a scope and a name prefix in the Stage view, pick the dataset
    offered, see what it holds, stage it, and watch its jobs succeed."""
    from rucio_server import VENV, RucioServer, Site

    if not (VENV / "bin" / "gunicorn").exists():
        pytest.fail("scripts/test makes the Rucio server's environment")
    base = tmp_path_factory.mktemp("browser-rucio")
    rucio = RucioServer(base / "rucio")
    rucio.workdir.mkdir()
    rucio.start()
    name, url = fresh_database()
    try:
        client = rucio.client()
        client.add_scope("root", "sky")
        site_rse = Site.create(client, "SITE_LOCAL", "/srcnet/site", base / "site" / "storage" / "rse")
        files = {"m31.fits": os.urandom(200_000), "m33.fits": os.urandom(100_000)}
        for file_name, data in files.items():
            site_rse.add_file("sky", file_name, data)
        client.add_dataset("sky", "galaxies")
        client.attach_dids("sky", "galaxies", [{"scope": "sky", "name": file_name} for file_name in files])
        settings = {
            "rucio_url": rucio.url,
            "rucio_account": "root",
            "rucio_username": "ddmlab",
            "rucio_password": "secret",
            "rucio_rse": "SITE_LOCAL",
            "rucio_rse_mounts": json.dumps({site_rse.pfn_prefix: str(site_rse.mount)}),
        }
        with running_site(base / "site", url, **settings) as (cluster, api):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            stage_form(page, api, "vera")
            page.get_by_role("radio", name=re.compile("Rucio DIDs")).check()
            field = page.get_by_label("Rucio DID", exact=True)
            field.fill("sky:gal")
            expect(page.locator("datalist option[value='sky:galaxies']")).to_have_count(1, timeout=10_000)
            field.fill("sky:galaxies")
            expect(page.get_by_text("dataset · 2 files · 293 KiB · at this site")).to_be_visible(timeout=10_000)
            expect(page.get_by_label("Destination in the user area")).to_have_value("galaxies")
            shoot(page, "stage-did")
            page.get_by_role("button", name="Stage", exact=True).click()
            expect(page).to_have_url(re.compile("#/jobs$"))
            expect(page.get_by_role("listitem", name=re.compile(r"^Job \d+, Succeeded"))).to_have_count(
                2, timeout=30_000
            )
            expect(page.get_by_text("sky:m31.fits").first).to_be_visible()
            context.close()
            area = cluster.users / "vera" / "galaxies"
            assert {path.name: path.read_bytes() for path in area.iterdir()} == files
            assert [text for text in errors if "status of 4" not in text] == []
    finally:
        rucio.stop()
        drop_database(name)


def test_kept_for_a_chosen_lifetime_extended_and_released(site: tuple[Cluster, str], page: Page) -> None:
    cluster, api = site
    cluster.source("life/keep.dat", b"k" * 3000)
    stage_form(page, api, "lena")
    page.get_by_label("Keep for").select_option("7 days")
    page.get_by_label("Source on storage").fill("life/keep.dat")
    page.get_by_role("button", name="Stage", exact=True).click()
    expect(page).to_have_url(re.compile("#/jobs$"))
    card = page.get_by_role("listitem", name=re.compile(r"^Job \d+, Succeeded"))
    expect(card).to_contain_text("Kept until", timeout=30_000)
    job_id = int(re.search(r"#(\d+)", card.inner_text())[1])  # type: ignore[index]
    assert httpx.get(f"{api}/api/v1/jobs/{job_id}").json()["lifetime"] == 7 * 86400
    expect(page.get_by_text(re.compile(r"^Holding 2\.9 KiB$"))).to_be_visible(timeout=10_000)
    shoot(page, "jobs-lifetime")
    page.goto(f"{api}/#/usage")  # development mode: everyone sees the admins' table
    expect(page.get_by_role("row", name=re.compile(r"^lena 2\.9 KiB 1 1 0 B"))).to_be_visible()
    page.goto(f"{api}/#/jobs")
    card = job_card(page, job_id)

    card.get_by_label(f"Keep the data of job {job_id} for").select_option("30 days")
    card.get_by_role("button", name=f"Extend job {job_id}").click()
    page.wait_for_function(f"fetch('/api/v1/jobs/{job_id}').then(r => r.json()).then(j => j.lifetime === {30 * 86400})")
    card.get_by_role("button", name=f"Release the data of job {job_id}").click()
    card.get_by_role("button", name=f"Remove the data of job {job_id} now").click()
    expect(card).to_contain_text("Data released by user", timeout=10_000)
    assert not (cluster.users / "lena" / "keep.dat").exists()
    expect(card.get_by_role("button", name=re.compile("Release|Extend"))).to_have_count(0)

    expect(page.get_by_text(re.compile(r"^Holding 0 B$"))).to_be_visible(timeout=10_000)
