"""Run and task notifications: webhooks are POSTed, emails go over SMTP.

Sending happens on a small thread pool so a slow webhook never holds up the run; the outcome of
every notification (sent, failed, or recorded because no SMTP server is configured) is written
to the audit log by the orchestrator's thread when the run ends. A notification that fails is a
warning, never a failed run.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from lakestack.bundle.specs.jobs import (
    EmailNotificationsSpec,
    JobSpec,
    TaskSpec,
    WebhookNotificationsSpec,
    WebhookSpec,
)
from lakestack.console import Console
from lakestack.state.base import StateStore
from lakestack.state.models import RunRecord

__all__ = ["NotifyConfig", "Notifier", "SmtpConfig"]

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class SmtpConfig:
    """Where to send email."""

    host: str
    port: int = 25
    sender: str = "lakestack@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False


@dataclass(frozen=True)
class NotifyConfig:
    """Named webhook destinations and the SMTP server, from the bundle's ``lakestack`` mapping."""

    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    smtp: SmtpConfig | None = None


@dataclass
class _Outcome:
    action: str
    object_id: str
    details: dict[str, Any]
    warning: str | None = None


class Notifier:
    """Sends the notifications a job or task asks for."""

    def __init__(
        self, state: StateStore, config: NotifyConfig, *, target: str, user: str, console: Console
    ) -> None:
        self._state = state
        self._config = config
        self._target = target
        self._user = user
        self._console = console
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[_Outcome]] = []

    def run_event(self, event: str, run: RunRecord, job: JobSpec) -> None:
        """Notify about a run: ``on_start``, ``on_success``, ``on_failure`` (also for a skipped
        run) or ``on_duration_warning_threshold_exceeded``."""
        if self._muted(run.state, job):
            return
        payload = _payload(event, run, None, None)
        subject = f"[lakestack] run {run.run_id} of job {run.job_name} {_verb(event, run.state)}"
        self._send(job.email_notifications, job.webhook_notifications, event, payload, subject, run)

    def task_event(
        self, event: str, run: RunRecord, job: JobSpec, task: TaskSpec, error: str | None
    ) -> None:
        """Notify about a task, when the task itself configures notifications."""
        if task.email_notifications is None and task.webhook_notifications is None:
            return
        payload = _payload(event, run, task.task_key, error)
        subject = (
            f"[lakestack] task {task.task_key} of run {run.run_id} ({run.job_name}) {event[3:]}"
        )
        self._send(
            task.email_notifications, task.webhook_notifications, event, payload, subject, run
        )

    def flush(self) -> None:
        """Wait for notifications in flight and record their outcome in the audit log."""
        for future in self._pending:
            outcome = future.result()
            if outcome.warning:
                self._console.warning(outcome.warning)
            self._state.audit(
                actor=self._user,
                action=outcome.action,
                object_type="notification",
                object_id=outcome.object_id,
                target=self._target,
                details=outcome.details,
            )
        self._pending.clear()

    def close(self) -> None:
        """Flush and stop the sending threads."""
        self.flush()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _muted(self, state: str, job: JobSpec) -> bool:
        settings = job.notification_settings
        if state == "SKIPPED":
            emails = job.email_notifications
            return bool(
                (settings and settings.no_alert_for_skipped_runs)
                or (emails and emails.no_alert_for_skipped_runs)
            )
        return bool(state == "CANCELED" and settings and settings.no_alert_for_canceled_runs)

    def _send(
        self,
        emails: EmailNotificationsSpec | None,
        hooks: WebhookNotificationsSpec | None,
        event: str,
        payload: dict[str, Any],
        subject: str,
        run: RunRecord,
    ) -> None:
        addresses: list[str] = list(getattr(emails, event, None) or []) if emails else []
        webhooks: list[WebhookSpec] = list(getattr(hooks, event, None) or []) if hooks else []
        if not addresses and not webhooks:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lakestack-notify")
        body = json.dumps(payload, indent=2)
        if addresses:
            self._pending.append(
                self._pool.submit(self._email, addresses, subject, body, run.run_id)
            )
        for hook in webhooks:
            self._pending.append(self._pool.submit(self._webhook, hook, payload, run.run_id))

    def _email(self, to: list[str], subject: str, body: str, run_id: int) -> _Outcome:
        details: dict[str, Any] = {"to": to, "subject": subject, "run_id": run_id}
        smtp = self._config.smtp
        if smtp is None:
            details["body"] = body
            return _Outcome("notification.email.recorded", ",".join(to), details)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = smtp.sender, ", ".join(to), subject
        message.set_content(body)
        try:
            client_class = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
            with client_class(smtp.host, smtp.port, timeout=TIMEOUT_SECONDS) as client:
                if smtp.starttls:
                    client.starttls()
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            details["error"] = str(exc)
            warning = f"email to {', '.join(to)} via {smtp.host}:{smtp.port} failed: {exc}"
            return _Outcome("notification.email.failed", ",".join(to), details, warning)
        return _Outcome("notification.email.sent", ",".join(to), details)

    def _webhook(self, hook: WebhookSpec, payload: dict[str, Any], run_id: int) -> _Outcome:
        headers = {"Content-Type": "application/json", "User-Agent": "lakestack"}
        url = hook.url
        name = hook.id or hook.url or ""
        if hook.id is not None:
            destination = self._config.destinations.get(hook.id)
            if destination is None:
                known = ", ".join(sorted(self._config.destinations)) or "none"
                warning = (
                    f"webhook destination '{hook.id}' is not defined (defined: {known}); "
                    "add it under lakestack.notification_destinations"
                )
                return _Outcome("notification.webhook.failed", name, {"error": warning}, warning)
            url = str(destination.get("url"))
            headers.update({str(k): str(v) for k, v in (destination.get("headers") or {}).items()})
        assert url is not None
        details: dict[str, Any] = {"url": url, "event": payload["event_type"], "run_id": run_id}
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                details["status"] = response.status
        except (urllib.error.URLError, OSError, ValueError) as exc:
            details["error"] = str(exc)
            return _Outcome(
                "notification.webhook.failed", name, details, f"webhook {url} failed: {exc}"
            )
        return _Outcome("notification.webhook.sent", name, details)


def _verb(event: str, state: str) -> str:
    if event == "on_duration_warning_threshold_exceeded":
        return "is running past its duration warning threshold"
    return "started" if event == "on_start" else state


def _payload(event: str, run: RunRecord, task_key: str | None, error: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_type": f"jobs.{event}",
        "workspace_id": "local",
        "target": run.target,
        "job": {"job_id": run.job_key, "name": run.job_name},
        "run": {
            "run_id": run.run_id,
            "parent_run_id": run.parent_run_id,
            "state": run.state,
            "state_message": run.state_message,
            "trigger_type": run.trigger_type,
        },
    }
    if task_key is not None:
        payload["task"] = {"task_key": task_key, "error": error}
    return payload
