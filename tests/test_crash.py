"""Kill apply with SIGKILL at several points; a rerun must converge to exactly what a clean apply makes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_gitops.backends.local import LocalBackend
from tests.helpers import copy_example, init_repo

pytestmark = pytest.mark.slow


def run_apply(repo: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_GITOPS_FAILPOINT"}
    env["MLOPS_GITOPS_RUNTIME"] = "none"  # crash safety of the state; serving has its own tests
    if failpoint:
        env["MLOPS_GITOPS_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "mlops_gitops", "apply", str(repo), "--auto-approve"],
                          env=env, capture_output=True, text=True, timeout=120)


def fingerprint(repo: Path) -> dict[str, Any]:
    """The workspace as a user sees it, minus times and apply ids."""
    ws = repo / ".mlops" / "dev"
    backend = LocalBackend(ws)
    snap = backend.read()
    resources = {
        str(a): (r.spec_hash, r.content_hash, r.status, r.managed, tuple((f.rel, f.sha256) for f in r.files))
        for a, r in snap.resources.items()
    }
    referenced = {f.sha256 for r in snap.resources.values() for f in r.files}
    stored = set(backend.store.artifacts.all())
    backend.close()
    return {"resources": resources, "counters": dict(snap.counters), "referenced": referenced, "stored": stored}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repo = init_repo(copy_example(tmp_path_factory.mktemp("clean") / "repo"))
    assert run_apply(repo).returncode == 0
    return fingerprint(repo)


@pytest.mark.parametrize("failpoint", [
    "action-begun:1",  # journal says begun, nothing written
    "artifact-stored:2",  # a file copied into the store, its row never written
    "before-commit:4",  # killed inside the metadata transaction
    "after-commit:6",  # committed, journal and lock left behind
    "action-begun:13",  # near the end
])
def test_killed_apply_converges(tmp_path: Path, clean: dict[str, Any], failpoint: str) -> None:
    repo = init_repo(copy_example(tmp_path / "repo"))
    killed = run_apply(repo, failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = run_apply(repo)
    assert rerun.returncode == 0, rerun.stderr
    assert "was interrupted" in rerun.stderr
    state = fingerprint(repo)
    assert state["resources"] == clean["resources"]
    assert state["counters"] == clean["counters"]
    assert state["referenced"] <= state["stored"], "state refers to a file that is not stored"
    assert state["stored"] == state["referenced"], "orphaned files left in the store"
    again = run_apply(repo)
    assert again.returncode == 0 and "Nothing to do" in again.stdout
    assert LocalBackend(repo / ".mlops" / "dev").lock_holder() is None
