"""What the local backend's effects may do besides reading and writing the store: say something, raise a
lifecycle event, and send a mail. The backend gives its own; tests give recording ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _no_mail(recipients: list[str], subject: str, body: str, about: str, html: str | None = None) -> None:
    return None


@dataclass
class Hooks:
    note: Callable[[str], None]  # progress of slow steps (environment and image builds, fetches)
    warn: Callable[[str], None]
    emit: Callable[[str, str, dict[str, Any]], Any]  # event type, subject, data
    # recipients, subject, body, what it is about, and an HTML version of the body (or None)
    mail: Callable[[list[str], str, str, str, str | None], None] = _no_mail
