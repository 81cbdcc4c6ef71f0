"""Exit codes and error handling of the command line, in-process and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops import __version__
from tests.helpers import Result

Cli = Callable[..., Result]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_gitops.cli import main

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_usage_errors_exit_1_not_2(cli: Cli) -> None:
    res = cli("plan", "--format", "yaml")
    assert res.code == 1 and "invalid choice" in res.err


def test_internal_errors_are_reported_without_traceback(cli: Cli, example: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("mlops_gitops.apply.planning.make_plan", boom)
    res = cli("plan", str(example))
    assert res.code == 3 and "This is a bug" in res.err and "kaboom" in res.err and "Traceback" not in res.err
    res = cli("--debug", "plan", str(example))
    assert res.code == 3 and "Traceback" in res.err


@pytest.mark.slow
def test_console_script_end_to_end(example: Path) -> None:
    run = [sys.executable, "-m", "mlops_gitops"]
    out = subprocess.run([*run, "apply", str(example), "--auto-approve"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Apply complete! Resources: 14 added" in out.stdout
    out = subprocess.run([*run, "plan", str(example), "--detailed-exitcode"], capture_output=True, text=True)
    assert out.returncode == 0 and "No changes." in out.stdout


def test_force_unlock(cli: Cli, example: Path) -> None:
    from mlops_gitops.backends.local import LocalBackend

    res = cli("force-unlock", "nope", "-C", str(example))
    assert res.code == 1 and "not locked" in res.err
    backend = LocalBackend(example / ".mlops" / "dev")
    with backend.lock("apply") as info:
        res = cli("force-unlock", info.id, "-C", str(example))
        assert res.code == 1 and "still held by a running process" in res.err
        res = cli("force-unlock", "wrong-id", "-C", str(example))
        assert res.code == 1 and "does not match" in res.err
        # Simulate a holder that died on another machine: the OS-level lock is free, the row remains.
        from mlops_gitops.backends.local.lock import os_lock_for

        assert os_lock_for(backend.store.engine, backend.path).try_acquire() is False
    from sqlalchemy import insert

    from mlops_gitops.backends.local import db

    with backend.store.engine.begin() as conn:
        conn.execute(insert(db.locks).values(name="workspace", id="abc", operation="apply", who="ci", host="h",
                                             pid=1, created="2026-01-01", reason=""))
    res = cli("force-unlock", "abc", "-C", str(example))
    assert res.code == 0 and "Workspace unlocked" in res.out
    assert backend.lock_holder() is None


def test_sqlite_lock_refuses_second_apply(cli: Cli, example: Path) -> None:
    from mlops_gitops.backends.local import LocalBackend

    backend = LocalBackend(example / ".mlops" / "dev")
    with backend.lock("apply", reason="manual fix"):
        res = cli("apply", str(example), "--auto-approve")
        assert res.code == 1 and "the workspace is locked" in res.err and "manual fix" in res.err
    assert cli("apply", str(example), "--auto-approve").code == 0
