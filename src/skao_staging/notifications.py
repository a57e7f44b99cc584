"""Telling users: when a request ends, and a day before staged data expires; by e-mail and webhook.

The ``Notifier`` thread runs in every process with a worker pool; one process at a time acts (it
leads the ``notifier`` row of ``staging_leaders``). Each round it turns ended requests and coming
expiries into notices (``staging_notifications``, an outbox) and delivers what is due: an e-mail
through the site's SMTP relay to the address the user's sign-in carried, and a JSON body signed
with HMAC-SHA256 to the operators' webhook. A failed delivery is tried again after a doubling
pause, up to ``STAGING_NOTIFY_MAX_ATTEMPTS``; no worker ever waits for it. Nothing a user sends
chooses where a notice goes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from .config import Settings
from .db import JobStore, Notice, NoticeStore, iso_utc, utcnow
from .logs import get_logger
from .periodic import Periodic
from .reaper import step_down

log = get_logger("notifications")
TASK = "notifier"
REQUEST_ENDED, DATA_EXPIRING = "request.ended", "data.expiring"
BATCH = 100
LISTED_JOBS = 100  # jobs named in one notice; the rest are counted
EXPIRY_NOTICE = timedelta(hours=24)  # how long before data expires the user is told
RECENT_REQUESTS = timedelta(days=7)  # older requests that end are not told of (a service that was off)
SIGNATURE_HEADER = "X-Staging-Signature"


def signature(secret: bytes, body: bytes) -> str:
    """The webhook's ``X-Staging-Signature``: ``sha256=`` and the HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Channel(Protocol):
    @property
    def enabled(self) -> bool: ...

    def send(self, notice: Notice) -> None: ...


class EmailChannel:
    """Notices as plain-text e-mails through the site's SMTP relay."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return self.settings.smtp_host is not None

    def send(self, notice: Notice) -> None:
        settings = self.settings
        message = compose_email(json.loads(notice.payload), settings.smtp_from, str(notice.email))
        with smtplib.SMTP(str(settings.smtp_host), settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username and settings.smtp_password is not None:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)


class WebhookChannel:
    """Notices POSTed as JSON to the operators' webhook, signed with the shared secret."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else b""

    @property
    def enabled(self) -> bool:
        return self.settings.webhook_url is not None

    def send(self, notice: Notice) -> None:
        body = notice.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Staging-Event": notice.kind,
            "X-Staging-Delivery": str(json.loads(notice.payload)["notice_id"]),
            SIGNATURE_HEADER: signature(self.secret, body),
        }
        response = httpx.post(str(self.settings.webhook_url), content=body, headers=headers, timeout=10)
        if not response.is_success:
            raise RuntimeError(f"the webhook answered HTTP {response.status_code}")


def compose_email(payload: dict[str, Any], sender: str, recipient: str) -> EmailMessage:
    """The e-mail of a notice: what happened, and the jobs it concerns."""
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    jobs = payload.get("jobs", [])
    if payload["event"] == REQUEST_ENDED:
        message["Subject"] = f"[skao-staging] your request {payload['request_id'][:8]} {payload['state']}"
        counts = ", ".join(f"{count} {state}" for state, count in sorted(payload["counts"].items()))
        lines = [f"Your staging request {payload['request_id']} ended: {payload['state']} ({counts})."]
    else:
        message["Subject"] = "[skao-staging] staged data expires within 24 hours"
        lines = ["Data staged for you expires soon. Extend it (PATCH /api/v1/jobs/<id>) if you still need it."]
    lines.append("")
    for job in jobs:
        kept = f", kept until {job['expires_at']}" if job.get("expires_at") else ""
        error = f", {job['error_code']}" if job.get("error_code") else ""
        lines.append(f"  job {job['job_id']}: {job.get('status', 'succeeded')} {job['destination'] or ''}{error}{kept}")
    if payload.get("more_jobs"):
        lines.append(f"  and {payload['more_jobs']} more")
    message.set_content("\n".join(lines) + "\n")
    return message


class Notifier(Periodic):
    """Finds what to tell users and delivers it, while this process leads."""

    def __init__(self, settings: Settings, jobs: JobStore, notices: NoticeStore, process_id: str) -> None:
        super().__init__("notifier", settings.notify_interval_seconds)
        self.settings, self.jobs, self.notices, self.process_id = settings, jobs, notices, process_id
        self.channels: dict[str, Channel] = {"email": EmailChannel(settings), "webhook": WebhookChannel(settings)}

    @property
    def enabled(self) -> bool:
        return any(channel.enabled for channel in self.channels.values())

    def stopped(self) -> None:
        step_down(self.jobs, TASK, self.process_id)

    def tick(self) -> None:
        """One look for what to tell, and one delivery of what is due, if this process leads."""
        if not self.jobs.lead(TASK, self.process_id, max(3 * self.interval, 1.0)):
            return
        self.collect()
        self.deliver(utcnow())

    # -- what to tell ---------------------------------------------------------------------------

    def collect(self) -> None:
        now = utcnow()
        for request_id in self.notices.ended_requests(now - RECENT_REQUESTS, BATCH):
            summary = self.jobs.summarize_request(request_id)
            request_jobs = self.jobs.jobs_of_request(request_id)
            username = request_jobs[0].username if request_jobs else None

            def ended(summary: Any = summary, request_jobs: Any = request_jobs, username: Any = username) -> str:
                return _payload(
                    REQUEST_ENDED,
                    username,
                    request_jobs,
                    request_id=summary.request_id,
                    state=summary.state,
                    counts=summary.counts,
                    bytes_done=summary.bytes_done,
                    bytes_total=summary.bytes_total,
                )

            self.notices.notify_request_ended(request_id, username, ended if self.enabled else None, REQUEST_ENDED)
        expiring = self.notices.expiring(now + EXPIRY_NOTICE, int(EXPIRY_NOTICE.total_seconds()), BATCH)
        by_user: dict[str | None, list[dict[str, Any]]] = {}
        for row in expiring:
            by_user.setdefault(row["username"], []).append(row)
        for username, rows in by_user.items():

            def soon(username: str | None = username, rows: list[dict[str, Any]] = rows) -> str:
                return _payload(DATA_EXPIRING, username, rows)

            ids = [row["id"] for row in rows]
            self.notices.notify_expiring(username, ids, soon if self.enabled else None, DATA_EXPIRING)

    # -- delivering -----------------------------------------------------------------------------

    def deliver(self, now: datetime) -> None:
        for notice in self.notices.due(now, BATCH):
            if self.stopping.is_set():
                return
            self._deliver(notice)

    def _deliver(self, notice: Notice) -> None:
        pending = {
            "email": self.channels["email"].enabled and notice.email is not None and not notice.email_done,
            "webhook": self.channels["webhook"].enabled and not notice.webhook_done,
        }
        errors = []
        for name, due in pending.items():
            if not due:
                continue
            try:
                self.channels[name].send(notice)
            except Exception as exc:  # any failure of a channel: tried again later
                errors.append(f"{name}: {_describe(exc)}")
                continue
            self.notices.delivered(notice.id, name)
            log.info("notice %s (%s) for %s delivered by %s", notice.id, notice.kind, notice.username, name)
        if not errors:
            self.notices.finish(notice.id)
            return
        error = "; ".join(errors)
        if notice.attempts + 1 >= self.settings.notify_max_attempts:
            log.error("notice %s given up after %d attempts: %s", notice.id, notice.attempts + 1, error)
            self.notices.finish(notice.id, error)
            return
        pause = min(3600.0, self.interval * 2**notice.attempts)
        log.warning("notice %s not delivered (%s); trying again in %.0fs", notice.id, error, pause)
        self.notices.retry_later(notice.id, utcnow() + timedelta(seconds=pause), error)


def _payload(event: str, username: str | None, jobs: list[Any], **fields: Any) -> str:
    """The JSON of a notice (what the webhook receives, and the e-mail is written from)."""
    listed = [_job_fields(job) for job in jobs[:LISTED_JOBS]]
    body = {
        "event": event,
        "notice_id": str(uuid.uuid4()),
        "time": iso_utc(utcnow()),
        "username": username,
        **fields,
        "jobs": listed,
        "more_jobs": max(0, len(jobs) - LISTED_JOBS),
    }
    return json.dumps(body, sort_keys=True)


def _job_fields(job: Any) -> dict[str, Any]:
    if isinstance(job, dict):  # a row of expiring data
        return {
            "job_id": job["id"],
            "request_id": job["request_id"],
            "destination": job["destination"],
            "expires_at": iso_utc(job["expires_at"]),
        }
    return {
        "job_id": job.id,
        "status": job.status,
        "destination": job.destination,
        "expires_at": iso_utc(job.expires_at),
        "error_code": job.error_code,
    }


def _describe(exc: Exception) -> str:
    """A delivery failure for the log and the notice's record: never a password or a secret."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}"
    return str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__
