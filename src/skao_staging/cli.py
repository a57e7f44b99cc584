"""The ``skao-staging`` command: serve, worker, migrate, and a client for a running service."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from .client import DEFAULT_URL, ApiError, StagingClient, StagingRequest
from .db.models import FINAL_STATUSES

app = typer.Typer(help="skao-staging: stage SKA data to where astronomers work.", no_args_is_help=True)
console = Console()
UrlOption = Annotated[
    str, typer.Option("--url", envvar=["SKAO_STAGING_URL", "STAGING_URL"], help="Base URL of a running service.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=["SKAO_STAGING_TOKEN", "JUPYTERHUB_API_TOKEN"],
        help="A bearer token: an OIDC access token, or a JupyterHub token where the site accepts them.",
        show_default=False,
    ),
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback address with STAGING_AUTH_MODE=none (anyone may act as anyone).")
    ] = False,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Apply the database migrations at start (a single-machine install).")
    ] = False,
) -> None:
    """Run the API (with its embedded worker unless STAGING_EMBEDDED_WORKER=false).

    It listens at once; /readyz answers 503 with the reason until the database is ready.
    """
    import ipaddress

    import uvicorn

    from .api.app import create_app
    from .config import get_settings

    settings = get_settings()
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if settings.auth_mode == "none" and not loopback and not insecure:
        console.print(
            f"[red]refusing to serve on {host} with STAGING_AUTH_MODE=none:[/red] anyone could act as any user. "
            "Set STAGING_AUTH_MODE to oidc or header, or pass --insecure."
        )
        raise typer.Exit(2)

    class AnnouncingServer(uvicorn.Server):
        """uvicorn's server, saying where it listens once its socket is bound."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                shown = f"[{host}]" if ":" in host else host
                console.print(f"skao-staging listening on http://{shown}:{port} (web UI /, API docs /docs)")

    app_ = create_app(settings, migrate=migrate)
    AnnouncingServer(
        uvicorn.Config(app_, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
    ).run()


@app.command()
def migrate() -> None:
    """Apply the database migrations (MySQL/MariaDB; SQLite is migrated by serve)."""
    from .config import get_settings
    from .db import Database, current_revision, upgrade, wait_for_database
    from .logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    db = Database(settings.database_url)
    wait_for_database(lambda: upgrade(db), settings.startup_wait_seconds)
    console.print(f"database schema at revision {current_revision(db)}")


@app.command()
def openapi() -> None:
    """Print the service's OpenAPI schema (JSON), as /openapi.json serves it."""
    import json

    from .api.app import create_app
    from .config import Settings

    schema = create_app(Settings()).openapi()
    print(json.dumps(schema, indent=2, sort_keys=True))


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once (default STAGING_WORKER_THREADS).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve this process's Prometheus metrics here.")] = None,
) -> None:
    """Run jobs from the database until SIGTERM or SIGINT (then finish or hand back running jobs)."""
    from .config import get_settings
    from .db import Database, prepare_database, wait_for_database
    from .logs import configure_logging
    from .runtime import Runtime

    settings = get_settings()
    configure_logging(settings)
    db = Database(settings.database_url)
    wait_for_database(lambda: prepare_database(db), settings.startup_wait_seconds)
    runtime = Runtime(settings, db, role="worker", threads=concurrency or settings.worker_threads)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from .metrics import PROCESS

        start_http_server(metrics_port, registry=PROCESS)
    runtime.start()
    stop.wait()
    runtime.stop()


def _client(url: str, token: str | None) -> StagingClient:
    return StagingClient(url, token)


def _refused(error: ApiError) -> NoReturn:
    console.print(f"[red]error {error.status}:[/red] {error.detail} ({error.code})")
    raise typer.Exit(1)


@app.command()
def stage(
    method: str,
    username: str,
    source: Annotated[str, typer.Argument(help="local_path_on_storage")],
    relative_path: Annotated[str, typer.Argument(help="Destination in the user area (a local file for downloads)")],
    did: Annotated[
        bool, typer.Option("--did", help="SOURCE is a Rucio DID (scope:name); a dataset stages one job per file.")
    ] = False,
    lifetime: Annotated[
        str | None, typer.Option(help="How long the staged data is kept (ISO 8601 duration, e.g. P3D, or seconds).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Stage SOURCE for USERNAME with METHOD through a running service, showing progress."""
    with _client(url, token) as client:
        try:
            if method in ("direct_download", "direct_dowload") and not did:
                _download(client, username, source, Path(relative_path))
                return
            request = client.stage(source, relative_path, method=method, lifetime=lifetime, username=username, did=did)
        except ApiError as error:
            _refused(error)
        for item in request.refused:
            console.print(f"[red]refused:[/red] {item['error']['detail']} ({item['error']['code']})")
        if len(request.items) == 1:
            _report(_follow(client, request.items[0]["job"]["job_id"]))
            return
        _report_request(_follow_request(request))


def _follow_request(request: StagingRequest) -> dict[str, Any]:
    """A request of many jobs (a dataset): its bytes and jobs ended, until none is active."""
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=console) as bar:
        task = bar.add_task(f"request {request.id[:8]}", total=None)

        def show(state: dict[str, Any]) -> None:
            bar.update(task, completed=state["bytes_done"], total=state["bytes_total"] or None)

        return request.wait(show, interval=0.3)


def _report_request(state: dict[str, Any]) -> None:
    counts = ", ".join(f"{count} {status}" for status, count in sorted(state["counts"].items()))
    console.print(f"request {state['request_id']} {state['state']}: {state['jobs']} jobs ({counts})")
    if state["state"] != "succeeded":
        raise typer.Exit(1)


def _follow(client: StagingClient, job_id: int) -> dict[str, Any]:
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=console) as bar:
        task = bar.add_task(f"job {job_id}", total=None)
        while True:
            job = client.job(job_id)
            bar.update(task, completed=job["bytes_done"], total=job["bytes"])
            if job["status"] in FINAL_STATUSES:
                return job
            time.sleep(0.3)


def _report(job: dict[str, Any]) -> None:
    if job["status"] == "failed":
        console.print(f"[red]job {job['job_id']} failed:[/red] {job['error_reason']} ({job['error_code']})")
        raise typer.Exit(1)
    console.print(
        f"job {job['job_id']} {job['status']}: {job['destination']} "
        f"({job['bytes']} bytes, {job['checksum'] or 'no checksum'})"
    )
    if job["expires_at"]:
        console.print(f"kept until {job['expires_at']}")


def _download(client: StagingClient, username: str, source: str, target: Path) -> None:
    with Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console) as bar:
        task = bar.add_task("download", total=None)
        for done, total in client.download(source, target, username=username):
            bar.update(task, completed=done, total=total)
    console.print(f"downloaded to {target}")


@app.command()
def jobs(
    username: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List jobs of a running service as a table."""
    filters: dict[str, str | int] = {"limit": limit}
    filters.update({key: value for key, value in (("username", username), ("status", status)) if value})
    with _client(url, token) as client:
        try:
            found = client.jobs(**filters)
        except ApiError as error:
            _refused(error)
    table = Table("id", "status", "method", "user", "source", "relative path", "bytes", "error")
    for job in found:
        table.add_row(
            str(job["job_id"]),
            job["status"],
            job["method"] or "",
            job["username"] or "",
            job["local_path_on_storage"] or job["did"] or "",
            job["relative_path"] or "",
            str(job["bytes"] or ""),
            job["error_code"] or "",
        )
    console.print(table)


@app.command()
def usage(
    username: Annotated[str | None, typer.Option(help="Whose usage (admins: any user).")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Staged data a user holds now, by method, and what expires within 24 hours."""
    with _client(url, token) as client:
        try:
            body = client.usage(username)
        except ApiError as error:
            _refused(error)
    table = Table("method", "bytes", "files", "jobs")
    for method, held in sorted(body["by_method"].items()):
        table.add_row(method, str(held["bytes"]), str(held["files"]), str(held["jobs"]))
    held, expiring = body["held"], body["expiring_24h"]
    table.add_row("all", str(held["bytes"]), str(held["files"]), str(held["jobs"]), style="bold")
    console.print(table)
    quota = f" of a quota of {body['quota_bytes']} bytes" if body["quota_bytes"] else ""
    console.print(f"{body['username'] or 'everyone'} holds {held['bytes']} bytes{quota}")
    console.print(f"expiring within 24 hours: {expiring['bytes']} bytes in {expiring['files']} files")


@app.command()
def release(
    job_id: Annotated[int, typer.Argument(help="The job whose staged data is removed now.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Remove a job's staged data now (what is still as it was staged; the rest is kept and reported)."""
    with _client(url, token) as client:
        try:
            job = client.release(job_id)
        except ApiError as error:
            _refused(error)
    console.print(f"job {job_id}: {job['release_reason']} at {job['released_at']}")
    if job["release_note"]:
        console.print(f"kept: {job['release_note']}")
