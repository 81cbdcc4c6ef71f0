"""`serve --follow`: keep this machine's endpoint host converged to the shared workspace.

Polling the state serial (one indexed read) notices an apply from any machine within the interval; a full
pass also runs every RESYNC_S, so a host that missed a change (or restarted) converges anyway. Each pass
ends with a heartbeat in the workspace (mg_hosts), which `endpoint show` reads."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

from mlops_gitops.backends.base import Backend, Serving
from mlops_gitops.controller.serving import Outcome, ServingReconciler
from mlops_gitops.errors import WorkspaceError

RESYNC_S = 30.0


def default_host_id(workspace_path: str) -> str:
    return f"{socket.gethostname()}:{workspace_path}"


def follow(backend: Backend, serving: Serving, host_id: str, stop: threading.Event, interval: float = 1.0,
           log: Callable[[str], None] = print, on_pass: Callable[[Outcome], None] | None = None) -> None:
    """Converge until `stop` is set; the host is stopped and its report removed at the end."""
    target = serving.target()
    reconciler = ServingReconciler(backend, target, log)
    info = target.start()
    log(f"Following the workspace as host {host_id}: {info.url} (pid {info.pid})")
    seen: int | None = None
    last_pass = 0.0
    outcome: Outcome | None = None
    try:
        while not stop.is_set():
            try:
                info = target.start()  # restarts a host that died, from what it served
                serial = backend.serial()
                due = time.monotonic() - last_pass >= RESYNC_S or reconciler.pending_retry()
                if serial != seen or due or outcome is None:
                    outcome = reconciler.reconcile()
                    seen, last_pass = outcome.serial, time.monotonic()
                    for change in outcome.changes:
                        log(f"  {change}")
                    for endpoint, why in outcome.held.items():
                        log(f"  {endpoint}: {why}")
                    if on_pass is not None:
                        on_pass(outcome)
                served = target.served()
                serving.report_host(host_id, info.url, info.pid or os.getpid(), outcome.serial,
                                    outcome.status(served.deployments, served.routes))
            except WorkspaceError as exc:  # the database or store is unreachable for a moment: keep serving
                log(f"  cannot converge now: {exc}")
            stop.wait(interval)
    finally:
        target.stop()
        with contextlib.suppress(WorkspaceError):  # the database is gone: its report simply grows stale
            serving.forget_host(host_id)
