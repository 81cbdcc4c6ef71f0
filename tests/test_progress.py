"""Progress of slow operations: the status line on a terminal, timestamped lines in logs."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_gitops.progress import LOG_EVERY_S, Progress, Task, detect_mode

STAMP = r"\[\d\d:\d\d:\d\d\] "


def reporter(mode: str) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(stream, mode), stream


def test_a_log_names_a_task_after_a_second_and_then_at_least_every_ten_seconds() -> None:
    p, stream = reporter("log")
    t = Task("building environment sklearn:1", started=time.monotonic() - 0.5)
    p._tasks.append(t)
    p._log_heartbeats()
    assert stream.getvalue() == ""  # under a second: nothing
    t.started -= 1.0
    p._log_heartbeats()
    assert re.fullmatch(STAMP + r"running: building environment sklearn:1\n", stream.getvalue())
    p._log_heartbeats()
    assert stream.getvalue().count("\n") == 1  # not again until ten seconds have passed
    assert t.announced is not None
    t.announced -= LOG_EVERY_S
    t.detail = "uv pip install scikit-learn"
    p._log_heartbeats()
    assert re.search(STAMP + r"still running: building environment sklearn:1: uv pip install scikit-learn "
                             r"\(\d+\.\d s\)\n$", stream.getvalue())


def test_a_quick_task_leaves_no_line_and_an_announced_one_says_how_it_ended() -> None:
    p, stream = reporter("log")
    with p.task("quick"):
        pass
    assert stream.getvalue() == ""
    with pytest.raises(RuntimeError), p.task("slow") as t:
        t.announced = time.monotonic()  # as the ticker marks a task it has named
        raise RuntimeError("boom")
    assert re.fullmatch(STAMP + r"stopped: slow \(\d+\.\d s\)\n", stream.getvalue())


def test_the_terminal_line_shows_the_innermost_task_and_steps_aside_for_output() -> None:
    p, stream = reporter("tty")
    outer = Task("creating online-deployment:cancer/green", started=time.monotonic() - 3)
    inner = Task("building environment sklearn:1", detail="uv pip install", started=time.monotonic() - 1)
    p._tasks += [outer, inner]
    p._draw()
    drawn = stream.getvalue()
    assert drawn.startswith("\r\x1b[K") and "building environment sklearn:1 · 1." in drawn
    assert "(+1 more)" in drawn and drawn.endswith("· uv pip install")
    with p.writing():
        stream.write("online-deployment:cancer/blue: created\n")
    assert stream.getvalue().endswith("\r\x1b[Konline-deployment:cancer/blue: created\n")
    p.clear()  # nothing drawn now: nothing to clear
    assert stream.getvalue().endswith("created\n")


def test_off_writes_nothing_and_the_mode_follows_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    p, stream = reporter("off")
    with p.task("anything") as t:
        t.detail = "x"
    assert stream.getvalue() == ""
    for name in ("CI", "GITHUB_ACTIONS", "TF_BUILD", "MLOPS_GITOPS_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    assert detect_mode(io.StringIO()) == "log"  # a pipe or a file
    monkeypatch.setenv("MLOPS_GITOPS_PROGRESS", "tty")
    assert detect_mode(io.StringIO()) == "tty"


@pytest.mark.slow
def test_the_first_apply_says_what_it_is_doing_in_a_ci_log(example: Path) -> None:
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "process", "CI": "true"}
    env.pop("MLOPS_GITOPS_PROGRESS", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "mlops_gitops", "apply", str(example), "--auto-approve"],
                              env=env, capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([sys.executable, "-m", "mlops_gitops", "serve", "--stop", "-C", str(example)], env=env,
                       capture_output=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert any(re.match(STAMP + r"running: starting deployment cancer/green", line) for line in lines), lines
    assert any(re.match(STAMP + r"done: step train of train-cancer-classifier", line) for line in lines), lines
    assert "a summary: the full plan has" in proc.stdout  # the long plan, summarised
