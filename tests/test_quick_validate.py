"""`validate` on every save: the workspace read without SQLAlchemy, DVC's answers kept between runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.backends.local.quickread import read_snapshot
from mlops_gitops.commands.apply import apply
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.state import Snapshot
from mlops_gitops.vcs import dvc as dvcfacts


@pytest.fixture
def applied(example: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "none")  # state only: nothing built or served
    assert apply(str(example), auto_approve=True) == 0
    return example


def test_the_quick_read_is_the_stores_read(applied: Path) -> None:
    folder = applied / ".mlops" / "dev"
    full = LocalBackend(folder).read()
    quick = read_snapshot(folder)
    assert quick is not None and len(quick.resources) == len(full.resources) > 10
    assert quick.resources == full.resources
    assert (quick.workspace_id, quick.serial, quick.secret) == (full.workspace_id, full.serial, full.secret)
    assert quick.counters == full.counters and quick.job_outputs == full.job_outputs


def test_the_quick_read_refuses_a_store_that_is_not_the_folders(applied: Path) -> None:
    folder = applied / ".mlops" / "dev"
    marker = folder / "workspace.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "workspace_id": "someone-else"}))
    with pytest.raises(WorkspaceError, match="belong to workspace someone-else"):
        read_snapshot(folder)


def test_a_store_it_cannot_read_is_left_to_the_full_path(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    folder = applied / ".mlops" / "dev"
    with sqlite3.connect(folder / "state.db") as conn:
        conn.execute("DROP TABLE mg_counters")  # as an older store might lack a newer table
    assert read_snapshot(folder) is None
    assert read_snapshot(applied / "no-such-workspace") == Snapshot(None, 0)  # never written: empty


def test_a_changed_model_version_is_still_caught_on_the_quick_path(applied: Path, cli) -> None:  # type: ignore[no-untyped-def]
    spec = applied / "models" / "cancer-onnx.yml"
    spec.write_text(spec.read_text() + "version: '1'\n")  # the version apply gave it, now pinned
    assert cli("validate", str(applied)).code == 0
    onnx = next((applied / "models").rglob("*.onnx"))
    onnx.write_bytes(onnx.read_bytes() + b"\0")  # same version, other content
    result = cli("validate", str(applied))
    assert result.code == 1 and "VER001" in result.out


@pytest.mark.slow
def test_validate_with_a_warm_cache_imports_neither_dvc_nor_sqlalchemy(applied: Path) -> None:
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "none"}
    command = [sys.executable, "-X", "importtime", "-m", "mlops_gitops", "validate", str(applied)]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (applied / ".dvc" / "tmp" / dvcfacts.CACHE_FILE).is_file()
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0 and "file(s) valid" in second.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in second.stderr.splitlines() if "|" in line}
    assert "mlops_gitops.backends.local.quickread" in imported
    assert not {m for m in imported if m.split(".")[0] in ("dvc", "sqlalchemy")}


@pytest.mark.slow
def test_a_no_op_plan_reads_the_state_without_sqlalchemy_and_a_pipeline_change_still_previews(applied: Path) -> None:
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "process"}  # plans as a serving workspace does (runs nothing)
    command = [sys.executable, "-X", "importtime", "-m", "mlops_gitops", "plan", str(applied), "--show-all"]

    def plan() -> tuple[str, set[str]]:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout, {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}

    train = applied / "src" / "train.py"
    code = train.read_text()
    train.write_text(code + "# changed\n")  # the training code changes: the pipeline plans to run
    shown, imported = plan()
    assert "job:train-cancer-classifier" in shown and "step train: run" in shown  # its steps previewed
    assert "sqlalchemy" in imported  # the backend was opened for the preview
    train.write_text(code)
    (applied / "pipelines" / "train.yml").unlink()
    (applied / "models" / "cancer-trained.yml").unlink()
    shown, imported = plan()
    assert "No changes" in shown
    assert not {m for m in imported if m.split(".")[0] == "sqlalchemy"}
