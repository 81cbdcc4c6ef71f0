"""Who is acting, and when: used by locks, provenance and the change log."""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def whoami() -> str:
    for var in ("MLOPS_GITOPS_ACTOR", "GITHUB_ACTOR", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
