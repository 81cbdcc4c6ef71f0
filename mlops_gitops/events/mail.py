"""Email through an SMTP server (mlops.yaml's `smtp:`): monitors' alert_notification.emails and jobs'
notification_setting.emails. A mail is an event handed to the dispatcher like any other delivery, so a
server that is down never holds a command up, and an undelivered mail goes to the dead-letter file."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from mlops_gitops.events.model import Event

MAIL_EVENT = "mail"  # the type of the event that carries one mail (data: subject, body)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    port: int | None = None
    username: str | None = None
    password: str | None = None  # never printed: the sink's name and its errors leave it out
    security: str = "starttls"  # starttls | ssl | none
    timeout_s: float = 10.0

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587}.get(self.security, 25)


def mail_event(source: str, recipients: list[str], subject: str, body: str, about: str,
               html: str | None = None) -> Event:
    """A mail to send: its text, and an HTML version (a monitor's report page) that mail readers show instead."""
    return Event(MAIL_EVENT, source, about, {"to": list(recipients), "subject": subject, "body": body,
                                             **({"html": html} if html else {})})


@dataclass
class EmailSink:
    smtp: SmtpSettings
    patterns: list[str] = field(default_factory=lambda: [MAIL_EVENT])

    @property
    def name(self) -> str:
        return f"smtp {self.smtp.host}:{self.smtp.effective_port}"

    def message(self, event: Event) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.smtp.sender
        msg["To"] = ", ".join(event.data["to"])
        msg["Subject"] = str(event.data["subject"])
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="mlops-gitops")
        msg["X-MLOps-Subject"] = event.subject  # what the mail is about, for mail rules
        msg.set_content(str(event.data["body"]))
        if event.data.get("html"):
            msg.add_alternative(str(event.data["html"]), subtype="html")
        return msg

    def deliver(self, event: Event, deadline: float, abort: threading.Event) -> None:
        from mlops_gitops.events.sinks import DeliveryError

        s = self.smtp
        timeout = max(0.5, min(s.timeout_s, deadline - time.monotonic()))
        try:
            if s.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.effective_port, timeout=timeout,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.host, s.effective_port, timeout=timeout)
            with client:
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password or "")
                refused = client.send_message(self.message(event))
        except (OSError, smtplib.SMTPException) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise DeliveryError(f"{self.name}: {reason}") from None
        if refused:
            raise DeliveryError(f"{self.name}: refused {', '.join(sorted(refused))}")
