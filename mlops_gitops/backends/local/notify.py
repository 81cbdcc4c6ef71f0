"""Mails the local workspace sends: a monitor's alert (alert_notification.emails) when a signal breaches, and
a job's notification_setting (email_on job_completed / job_failed / job_cancelled) when its run ends. Both go
through Hooks.mail, so the backend decides how (mlops.yaml's smtp server) and a server that is down only
dead-letters the mail: the run is recorded, the schedule keeps firing."""

from __future__ import annotations

import re
from typing import Any

from mlops_gitops.backends.local.hooks import Hooks

STATUS_OF = {"job_completed": "completed", "job_failed": "failed", "job_cancelled": "cancelled"}


def _snake(text: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", text).lower()


def job_ended(hooks: Hooks, job: str, run_id: str, status: str, failures: list[str],
              setting: dict[str, Any] | None, occurrence: str | None = None) -> None:
    """Mail the job's notification_setting.emails when its email_on names how the run ended."""
    setting = setting or {}
    emails = [str(e) for e in setting.get("emails") or []]
    wanted = {STATUS_OF.get(_snake(str(e))) for e in setting.get("email_on") or []}
    if not emails or status not in wanted:
        return
    lines = [f"Job {job}: run {run_id} {status}."]
    if occurrence:
        lines.append(f"Fired by its schedule for {occurrence}.")
    if failures:
        lines += ["", "Failures:", *(f"- {f}" for f in failures)]
    lines += ["", f"mlops-gitops job show {run_id}", f"mlops-gitops job logs {run_id}"]
    hooks.mail(emails, f"[mlops-gitops] job {job} {status} (run {run_id})", "\n".join(lines) + "\n",
               f"run:{run_id}", None)


def monitor_breached(hooks: Hooks, definition: dict[str, Any], monitor: str, run_id: str,
                     breached: list[str], report: str, html: str | None) -> None:
    """Mail alert_notification.emails the run's report (Markdown as the text, the HTML page as its HTML
    version) when signals that alert (alert_enabled, by default true) breached."""
    emails = [str(e) for e in (definition.get("alert_notification") or {}).get("emails") or []]
    signals = definition.get("monitoring_signals") or {}
    alerting = [name for name in breached if (signals.get(name) or {}).get("alert_enabled", True) is not False]
    if not emails or not alerting:
        return
    hooks.mail(emails, f"[mlops-gitops] monitor {monitor}: {', '.join(alerting)} breached",
               report + f"\nmlops-gitops monitor show {run_id}\n", f"monitor:{run_id}", html)
