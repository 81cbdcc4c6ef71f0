"""Failpoints for crash tests: MLOPS_GITOPS_FAILPOINT=name:N kills this process (SIGKILL) the Nth time
execution reaches `name`. Unset in normal use, where each call is one dictionary lookup."""

from __future__ import annotations

import os
import signal
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()


def failpoint(name: str) -> None:
    spec = os.environ.get("MLOPS_GITOPS_FAILPOINT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == int(nth or "1")
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
