"""What the local backend's effects may do besides reading and writing the store: say something, and
raise a lifecycle event. The backend gives its own; tests give recording ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Hooks:
    note: Callable[[str], None]  # progress of slow steps (environment and image builds, fetches)
    warn: Callable[[str], None]
    emit: Callable[[str, str, dict[str, Any]], Any]  # event type, subject, data
