"""A line at least every ten seconds while tests run: a long end-to-end test otherwise leaves the log silent.

Runs in the process that reports (the xdist controller, or pytest itself without workers) and names the
tests that are running and for how long, when nothing else was printed in the last interval.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

INTERVAL_S = 10.0


class Heartbeat:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.running: dict[str, float] = {}
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="test-heartbeat", daemon=True)

    @pytest.hookimpl
    def pytest_sessionstart(self) -> None:
        self.thread.start()

    @pytest.hookimpl
    def pytest_sessionfinish(self) -> None:
        self.stop.set()

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        with self.lock:
            self.running[nodeid] = time.monotonic()

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self.lock:
            self.last = time.monotonic()
            if report.when == "teardown":
                self.running.pop(report.nodeid, None)

    def _beat(self) -> None:
        while not self.stop.wait(1.0):
            now = time.monotonic()
            with self.lock:
                if now - self.last < INTERVAL_S or not self.running:
                    continue
                self.last = now
                longest = sorted(self.running.items(), key=lambda kv: kv[1])[:3]
            names = ", ".join(f"{nodeid} ({now - started:.0f} s)" for nodeid, started in longest)
            more = len(self.running) - len(longest)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.ensure_newline()
                reporter.write_line(f"[{time.strftime('%H:%M:%S')}] still running: {names}"
                                    + (f" and {more} more" if more > 0 else ""))


def register(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the reporting process, not an xdist worker
        config.pluginmanager.register(Heartbeat(config), "mlops-gitops-heartbeat")
