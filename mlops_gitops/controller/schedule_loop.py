"""The workspace's endpoint host fires due schedules: every MLOPS_GITOPS_SCHEDULE_INTERVAL_S seconds (30 by
default) it does what `schedule run-due` does. Occurrences are claimed in the store, so a CI cron job running
`schedule run-due` beside it never fires one twice; one missed while the host was down fires once when it is
back (the latest), with the others counted."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_gitops.host")
DEFAULT_INTERVAL_S = 30.0


def interval() -> float:
    try:
        return max(0.05, float(os.environ.get("MLOPS_GITOPS_SCHEDULE_INTERVAL_S") or DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _backend(workspace: Path, database: str | None, artifacts: str | None) -> Any:
    """The workspace's backend as its project opens it (mlops.yaml's sinks, mail server, datastores), when the
    host was started by an apply of that project; else the workspace alone (events recorded, not sent)."""
    from mlops_gitops.backends.factory import PROJECT_VARIABLE, WORKSPACE_NAME_VARIABLE, open_backend
    from mlops_gitops.backends.local import LocalBackend

    root, name = os.environ.get(PROJECT_VARIABLE), os.environ.get(WORKSPACE_NAME_VARIABLE)
    if root and name:
        try:
            from mlops_gitops.spec.project import open_project

            _, backend = open_backend(open_project(root), name)
            if isinstance(backend, LocalBackend) and backend.path.resolve() == workspace.resolve():
                backend.warn = lambda m: log.warning("schedules: %s", m)
                return backend
            backend.close()
        except Exception as exc:  # mlops.yaml broken or gone: schedules still fire
            log.warning("schedules: %s: %s; firing without its notifications", root, exc)
    return LocalBackend(workspace, database, artifacts=artifacts, runtime="process",
                        warn=lambda m: log.warning("schedules: %s", m))


def fire_due(workspace: Path, database: str | None, artifacts: str | None) -> int:
    """One round: the schedules due now fired; how many fired."""
    backend = _backend(workspace, database, artifacts)
    backend.note = lambda m: log.info("schedules: %s", m)
    try:
        fired = backend.schedules.run_due(datetime.now(UTC), fired_by="host")
    finally:
        backend.close()
    for f in fired:
        suffix = (f" run {f.run_id}" if f.run_id else "") + (f" ({f.message})" if f.message else "")
        log.info("schedule %s @ %s: %s%s", f.schedule, f.occurrence, f.status, suffix)
    return len(fired)


def start(workspace: Path, database: str | None, artifacts: str | None) -> threading.Event:
    """Run rounds in a daemon thread until the returned event is set (or the host exits)."""
    stop = threading.Event()

    def loop() -> None:
        every = interval()
        while not stop.wait(every):
            if not (workspace / "state.db").exists() and database is None:
                continue  # a workspace never written has no schedules
            try:
                fire_due(workspace, database, artifacts)
            except Exception:  # logged; the next round tries again
                log.exception("firing due schedules failed")

    threading.Thread(target=loop, name="schedules", daemon=True).start()
    return stop
