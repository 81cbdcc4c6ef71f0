"""Mails: a breached monitor mails its alert_notification.emails the report, a scheduled job mails its
notification_setting.emails when it ends as email_on says, through mlops.yaml's smtp server (a real SMTP
server here, aiosmtpd); a server that is down leaves the run recorded and the mail in the dead-letter file."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import AZ, Result, commit_all, write
from tests.pipeline_helpers import pipeline_tree
from tests.test_monitors import monitored

Cli = Callable[..., Result]


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def with_smtp(repo: Path, port: int) -> None:
    config = repo / "mlops.yaml"
    config.write_text(config.read_text() + f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
                                           "  sender: mlops@example.com\n")


def test_a_breached_monitor_mails_its_report(cli: Cli, tmp_path: Path, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    repo = monitored(tmp_path / "repo")
    with_smtp(repo, port)
    drift = repo / "schedules" / "drift.yml"
    drift.write_text(drift.read_text() + "  alert_notification:\n    emails: [oncall@example.com, ml@example.com]\n")
    commit_all(repo, "Alert the team")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    res = cli("monitor", "run", "drift", cwd=repo)
    assert res.code == 0, res.out + res.err
    assert len(inbox.mails) == 1  # the command ended by draining deliveries: the mail is in
    to, mail = inbox.mails[0]
    assert to == ["oncall@example.com", "ml@example.com"]
    assert mail["From"] == "mlops@example.com" and mail["Subject"] == "[mlops-gitops] monitor drift: features breached"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in mail.walk()
             if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}, "the report as text, and its page as the HTML version"
    body = parts["text/plain"]
    assert "| size | numerical | population_stability_index |" in body and "mlops-gitops monitor show drift-" in body
    assert parts["text/html"].count("<svg") == 5, "the page with its plots (drift: 2 features, quality: 3)"


def test_a_scheduled_job_mails_when_it_ends(cli: Cli, tmp_path: Path, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    repo = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt")
    with_smtp(repo, port)
    job = repo / "pipelines" / "p.yml"
    job.write_text(job.read_text() + "notification_setting:\n  email_on: [JobCompleted, job_failed]\n"
                                     "  emails: [team@example.com]\n")
    write(repo / "schedules" / "hourly.yml", f"$schema: {AZ}/schedule.schema.json\nname: hourly\n"
                                             "trigger: {type: cron, expression: '0 * * * *'}\n"
                                             "create_job: ../pipelines/p.yml\n")
    commit_all(repo, "Run it every hour and say so")
    assert cli("validate", cwd=repo).code == 0
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    fired = cli("schedule", "run-due", "--at", "2030-01-01T00:30:00Z", cwd=repo)
    assert "completed run demo-" in fired.out, fired.out + fired.err
    assert [to for to, _ in inbox.mails] == [["team@example.com"]]
    mail = inbox.mails[0][1]
    assert mail["Subject"].startswith("[mlops-gitops] job demo completed (run demo-")
    assert "Fired by its schedule for 2030-01-01T00:00:00+00:00." in mail.get_payload(decode=True).decode()


def test_an_smtp_server_that_is_down_dead_letters_the_mail(cli: Cli, tmp_path: Path) -> None:
    repo = monitored(tmp_path / "repo")
    with_smtp(repo, free_port())  # nothing listens there
    drift = repo / "schedules" / "drift.yml"
    drift.write_text(drift.read_text() + "  alert_notification:\n    emails: [oncall@example.com]\n")
    commit_all(repo, "Alert the team")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    res = cli("monitor", "run", "drift", cwd=repo)
    assert res.code == 0 and "Monitor drift: breached" in res.out
    assert "not delivered to smtp 127.0.0.1:" in res.err and "ConnectionRefusedError" in res.err
    dead = [json.loads(line) for line in
            (repo / ".mlops" / "dev" / "events" / "dead-letter.jsonl").read_text().splitlines()]
    assert [d["event"]["data"]["to"] for d in dead] == [["oncall@example.com"]]
    assert json.loads(cli("monitor", "list", "--format", "json", cwd=repo).out)[0]["status"] == "breached"


def test_mails_without_a_mail_server_are_said_not_sent(cli: Cli, tmp_path: Path) -> None:
    repo = monitored(tmp_path / "repo")
    drift = repo / "schedules" / "drift.yml"
    drift.write_text(drift.read_text() + "  alert_notification:\n    emails: [oncall@example.com]\n")
    commit_all(repo, "Alert the team")
    checked = cli("validate", cwd=repo)
    assert "warning MAIL001" in checked.out and "mlops.yaml has no smtp server" in checked.out
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    res = cli("monitor", "run", "drift", cwd=repo)
    assert "not mailed to oncall@example.com: mlops.yaml has no smtp server" in res.err
