"""What a slow operation is doing while it does it: a spinner line on a terminal, timestamped lines in logs.

Anything that can take more than a second runs inside `task(label)`. On a terminal the running tasks
show on one status line at the bottom of stderr (redrawn ten times a second, cleared before any other
output); in CI logs and pipes a task that is still running after a second gets a timestamped line, then
one every ten seconds, and one when it ends. `MLOPS_GITOPS_PROGRESS=tty|log|off` overrides the choice.
Only the command line turns it on (`configure`); the library alone stays silent.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from mlops_gitops.textsafe import defuse

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
TTY_TICK_S = 0.1
LOG_FIRST_S = 1.0  # a task shorter than this leaves no line in a log
LOG_EVERY_S = 10.0  # CI logs: never longer than this without a line while something runs
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "TF_BUILD", "BUILDKITE", "GITLAB_CI", "JENKINS_URL")


@dataclass
class Task:
    label: str
    detail: str = ""  # what it is at now (a build step, a log line); the caller may set it as it goes
    started: float = field(default_factory=time.monotonic)
    announced: float | None = None  # when its last log line was written (log mode)

    @property
    def text(self) -> str:
        return f"{self.label}: {self.detail}" if self.detail else self.label

    def elapsed(self, now: float) -> str:
        return _seconds(now - self.started)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


def detect_mode(stream: TextIO) -> str:
    chosen = os.environ.get("MLOPS_GITOPS_PROGRESS", "").lower()
    if chosen in ("tty", "log", "off"):
        return chosen
    interactive = hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"
    in_ci = any(os.environ.get(v) for v in CI_VARIABLES)
    return "tty" if interactive and not in_ci else "log"


class Progress:
    def __init__(self, stream: TextIO | None = None, mode: str = "off") -> None:
        self.stream = stream
        self.mode = mode
        self._tasks: list[Task] = []
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._ticker: threading.Thread | None = None
        self._drawn = False  # a status line is on the terminal now
        self._frame = 0

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stderr  # looked up late: tests and pytest swap sys.stderr

    @contextmanager
    def task(self, label: str) -> Iterator[Task]:
        """Show `label` while the block runs (the block may set the task's `detail`)."""
        t = Task(label)
        if self.mode == "off":
            yield t
            return
        with self._lock:
            self._tasks.append(t)
            self._start_ticker()
        ok = False
        try:
            yield t
            ok = True
        finally:
            with self._lock:
                self._tasks.remove(t)
                if self.mode == "log" and t.announced is not None:
                    word = "done" if ok else "stopped"
                    self._line(f"{word}: {t.label} ({t.elapsed(time.monotonic())})")
                elif self.mode == "tty":
                    self._draw()
            self._wake.set()

    def clear(self) -> None:
        """Take the status line off the terminal before other output; the next tick redraws it."""
        with self._lock:
            if self._drawn:
                self._out.write("\r\x1b[K")
                self._out.flush()
                self._drawn = False

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the status line back while a caller writes its own output."""
        with self._lock:
            self.clear()
            yield

    # -- the ticker ------------------------------------------------------------------------------

    def _start_ticker(self) -> None:
        if self._ticker is None or not self._ticker.is_alive():
            self._ticker = threading.Thread(target=self._tick, name="mlops-gitops-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            with self._lock:
                if not self._tasks:
                    self.clear()
                    self._ticker = None
                    return
                if self.mode == "tty":
                    self._draw()
                else:
                    self._log_heartbeats()
            self._wake.wait(TTY_TICK_S if self.mode == "tty" else 0.25)
            self._wake.clear()

    def _draw(self) -> None:
        now = time.monotonic()
        running = [t for t in self._tasks if now - t.started >= 0.2]  # no flicker for quick ones
        if not running:
            self.clear()
            return
        # the innermost (latest) task says the most: "building environment …" inside "creating deployment …"
        t = running[-1]
        others = f" (+{len(running) - 1} more)" if len(running) > 1 else ""
        self._frame = (self._frame + 1) % len(FRAMES)
        width = _columns(self._out) - 1
        text = f"{FRAMES[self._frame]} {t.label} · {t.elapsed(now)}{others}" + (f" · {t.detail}" if t.detail else "")
        self._out.write("\r\x1b[K" + defuse(text)[:width])
        self._out.flush()
        self._drawn = True

    def _log_heartbeats(self) -> None:
        now = time.monotonic()
        for t in self._tasks:
            if t.announced is None and now - t.started >= LOG_FIRST_S:
                t.announced = now
                self._line(f"running: {t.label}")
            elif t.announced is not None and now - t.announced >= LOG_EVERY_S:
                t.announced = now
                self._line(f"still running: {t.text} ({t.elapsed(now)})")

    def _line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self._out.write(defuse(f"[{stamp}] {text}") + "\n")
        self._out.flush()


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 100


_current = Progress()


def current() -> Progress:
    return _current


def configure(mode: str | None = None, stream: TextIO | None = None) -> Progress:
    """Turn progress on for this process (the command line does, once): tty, log, off, or detected."""
    global _current
    _current = Progress(stream, mode or detect_mode(stream or sys.stderr))
    return _current


def task(label: str) -> AbstractContextManager[Task]:
    """`with progress.task("building environment x:1"):` on the process's reporter."""
    return _current.task(label)
