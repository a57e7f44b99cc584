"""Notices: e-mails to a real SMTP server (aiosmtpd on loopback) and a signed webhook that fails first."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from cluster import free_port
from conftest import LiveService, live_service
from skao_staging.db import Database, utcnow

SECRET = "webhook-s3cret"
SMTP_PASSWORD = "smtp-pa55word"


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


class Webhook:
    """A loopback HTTP receiver that answers 500 to its first ``failures`` posts, then 200."""

    def __init__(self, failures: int) -> None:
        self.posts: list[tuple[dict[str, str], bytes, int]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(hook.posts) < failures else 200
                hook.posts.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def delivered(self, event: str) -> list[dict[str, Any]]:
        """The bodies of ``event`` the receiver accepted."""
        return [
            json.loads(body)
            for headers, body, status in self.posts
            if status == 200 and json.loads(body)["event"] == event
        ]


def wait_for(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("nothing arrived in time")


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(failures=1)
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


@pytest.fixture
def notifying(tmp_path: Path, mailbox: tuple[Mailbox, int], webhook: Webhook) -> Iterator[LiveService]:
    server, service = live_service(
        tmp_path,
        auth_mode="header",
        smtp_host="127.0.0.1",
        smtp_port=mailbox[1],
        smtp_from="staging@example.org",
        smtp_password=SMTP_PASSWORD,  # no login is asked without a user name: it must never appear anywhere
        webhook_url=webhook.url,
        webhook_secret=SECRET,
        notify_interval_seconds=0.1,
    )
    with server:
        yield service


def ivy(email: str = "ivy@example.org") -> dict[str, str]:
    return {"X-Forwarded-User": "ivy", "X-Forwarded-Email": email}


def test_a_request_that_ends_is_told_by_email_and_a_signed_webhook(
    notifying: LiveService, mailbox: tuple[Mailbox, int], webhook: Webhook
) -> None:
    service, (box, _) = notifying, mailbox
    service.write_source("n/one.dat", b"1" * 10)
    items = [
        {"method": "local_copy", "local_path_on_storage": "n/one.dat", "relative_path": "one.dat"},
        {"method": "local_copy", "local_path_on_storage": "n/missing.dat", "relative_path": "two.dat"},
    ]
    accepted = httpx.post(f"{service.url}/api/v1/jobs", json={"items": items}, headers=ivy(), timeout=30).json()
    request_id = accepted["request_id"]

    recipients, message = wait_for(lambda: box.messages and box.messages[0])
    assert recipients == ["ivy@example.org"] and message["To"] == "ivy@example.org"
    assert message["From"] == "staging@example.org"
    assert message["Subject"] == f"[skao-staging] your request {request_id[:8]} partially_failed"
    body = message.get_payload()
    assert request_id in body and "1 failed, 1 succeeded" in body and "source_not_found" in body
    raw = message.as_string()
    assert SECRET not in raw and SMTP_PASSWORD not in raw

    (delivered,) = wait_for(lambda: webhook.delivered("request.ended"))
    assert delivered["request_id"] == request_id and delivered["username"] == "ivy"
    assert delivered["state"] == "partially_failed" and len(delivered["jobs"]) == 2
    attempts = [(headers, raw_body) for headers, raw_body, _ in webhook.posts]
    assert len(attempts) == 2  # the first answered 500: tried again
    assert attempts[0][1] == attempts[1][1]  # the same notice, byte for byte
    for headers, raw_body in attempts:
        expected = "sha256=" + hmac.new(SECRET.encode(), raw_body, hashlib.sha256).hexdigest()
        assert headers["X-Staging-Signature"] == expected
        assert headers["X-Staging-Event"] == "request.ended"
        assert headers["X-Staging-Delivery"] == delivered["notice_id"]
    time.sleep(0.5)
    assert len(box.messages) == 1 and len(webhook.posts) == 2  # told once


def test_data_about_to_expire_is_told_once_and_again_after_an_extension(
    notifying: LiveService, mailbox: tuple[Mailbox, int], webhook: Webhook
) -> None:
    service, (box, _) = notifying, mailbox
    service.write_source("n/kept.dat", b"k" * 10)
    response = httpx.post(
        f"{service.url}/stage_data",
        params={"method": "local_copy", "lifetime": "P2D"},
        json={"local_path_on_storage": "n/kept.dat", "relative_path": "kept.dat"},
        headers=ivy(),
        timeout=30,
    )
    job_id = response.json()["job_id"]
    time.sleep(0.5)
    assert box.messages == [] and webhook.posts == []  # a synchronous answer is its own notice

    def time_passes() -> None:  # a day and an hour later: 23 hours left
        db = Database(service.database_url)
        try:
            with db.engine.begin() as connection:
                connection.execute(
                    text("UPDATE staging_jobs SET expires_at = :at WHERE id = :id"),
                    {"at": utcnow() + timedelta(hours=23), "id": job_id},
                )
        finally:
            db.dispose()

    time_passes()
    _, message = wait_for(lambda: box.messages and box.messages[-1])
    assert message["Subject"] == "[skao-staging] staged data expires within 24 hours"
    assert f"job {job_id}: succeeded" in message.get_payload()
    (notice,) = wait_for(lambda: webhook.delivered("data.expiring"))
    assert [job["job_id"] for job in notice["jobs"]] == [job_id]

    extended = httpx.patch(f"{service.url}/api/v1/jobs/{job_id}", json={"lifetime": "P2D"}, headers=ivy(), timeout=30)
    assert extended.status_code == 200
    assert service.job_row(job_id)["expiry_notified_at"] is None
    time_passes()
    wait_for(lambda: len(webhook.delivered("data.expiring")) == 2)
    assert len(box.messages) == 2
