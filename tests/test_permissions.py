"""Workspace files that hold secrets are 0600, folders 0700, whatever the process umask is meanwhile."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving_helpers import SAMPLE, Host, served_tree, stop_host

pytestmark = pytest.mark.slow
SECRETS = ("state.db", "serving.json", "host.json", "metrics.key", "workspace.json")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "repo"
    yield repo
    stop_host(repo / ".mlops" / "dev")


def test_apply_under_umask_0_leaves_nothing_readable_or_writable_by_others(root: Path) -> None:
    """DVC sets the process umask to 0 for a moment while other apply threads write files; here it is 0 for the
    whole apply, so anything that depends on the umask shows up."""
    served_tree(root, {"blue": 90, "green": 10}, green="script",
                green_settings="environment:\n  image: python:3.11\n  conda_file: ../conda.yml\n")
    (root / "conda.yml").write_text("name: py\ndependencies:\n  - python=3.11\n")
    (root / "mlops.yaml").write_text((root / "mlops.yaml").read_text().replace("'src/**'", "'src/**', conda.yml"))
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "process"}
    done = subprocess.run([sys.executable, "-m", "mlops_gitops", "apply", str(root), "--auto-approve"], env=env,
                          capture_output=True, text=True, umask=0, timeout=600)
    assert done.returncode == 0, done.stderr
    ws = root / ".mlops" / "dev"
    assert Host(ws).score(SAMPLE, deployment="green").status_code == 200  # the worker's log exists too
    assert stat.S_IMODE(ws.stat().st_mode) == 0o700
    for name in SECRETS:
        assert stat.S_IMODE((ws / name).stat().st_mode) == 0o600, name
    exposed = []
    for path in [ws, *ws.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:  # SQLite's -wal and -shm come and go
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o002 or (path.is_dir() and mode & 0o077):
            exposed.append(f"{oct(mode)} {path.relative_to(ws)}")
    assert exposed == [], "\n".join(exposed)
