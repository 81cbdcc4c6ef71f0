"""The workspace's endpoint host records what it measures per deployment (requests, 5xx answers, latency
buckets; cumulative) in the workspace store every MLOPS_GITOPS_FIGURES_INTERVAL_S seconds (1 by default), so
that an apply walking a progressive rollout reads them there, from whichever machine it runs on."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_gitops.host")
DEFAULT_INTERVAL_S = 1.0


def interval() -> float:
    try:
        return max(0.05, float(os.environ.get("MLOPS_GITOPS_FIGURES_INTERVAL_S") or DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S


def start(workspace: Path, database: str | None, state: Any, port: int) -> None:
    from mlops_gitops.backends.local.store import LocalStore

    host_id = f"{socket.gethostname()}:{port}"
    every = interval()

    def loop() -> None:
        store = LocalStore(workspace, database)
        last: dict[str, Any] | None = None
        while True:
            figures = state.metrics.figures()
            if figures != last:
                try:
                    store.ensure()
                    store.record_figures(host_id, figures)
                    last = figures
                except Exception as exc:  # the store is busy or unreachable for a moment: the next round
                    log.warning("figures not recorded: %s", exc)
            threading.Event().wait(every)

    threading.Thread(target=loop, name="figures", daemon=True).start()
