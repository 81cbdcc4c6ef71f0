"""The README's quick start, run as written on a copy of this checkout in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def quick_start() -> tuple[list[str], list[str], list[str]]:
    """The section's two `sh` blocks (install and apply; then the tour) and the output block between them."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.S)
    sh = [body.strip().splitlines() for lang, body in blocks if lang == "sh"]
    shown = next(body.strip().splitlines() for lang, body in blocks if lang == "")
    assert len(sh) == 2, "the quick start has an install block and a tour block"
    return sh[0], shown, sh[1]


def expected_code(line: str) -> int:
    found = re.search(r"#\s*exit (\d+)", line)
    return int(found[1]) if found else 0


def copy_checkout(dest: Path) -> Path:
    """What a clone of this working tree holds: tracked and untracked files that Git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    return dest


def test_the_quick_start_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_GITOPS_RUNTIME")  # the README's user serves the endpoint for real
    checkout = copy_checkout(tmp_path / "mlops-gitops")
    venv = tmp_path / "venv"
    # The venv sees this interpreter's packages, so `pip install -e .` installs the package, not its
    # dependencies again (the commands run as written; only the download is spared).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    install, shown, tour = quick_start()

    def run(line: str) -> subprocess.CompletedProcess[str]:
        argv = shlex.split(line, comments=True)
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == expected_code(line), f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    try:
        results = [run(line) for line in install]
        where = subprocess.run([str(venv / "bin" / "python"), "-c", "import mlops_gitops as m; print(m.__file__)"],
                               env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        assert where.startswith(str(checkout)), where  # the copy's package, installed by the first command
        applied = results[-1].stdout
        for line in shown:
            if line != "...":
                assert line in applied.splitlines(), f"the README shows {line!r}; apply printed:\n{applied}"
        assert "Nothing to do" in run(install[-1]).stdout  # "Run it again and it says `Nothing to do`"
        outputs = [run(line) for line in tour]
        answer = json.loads(outputs[0].stdout)  # the invoke answered: one label per row of the sample
        sample = json.loads((checkout / "example-repo" / "samples" / "request.json").read_text())
        labels = answer["label"] if isinstance(answer, dict) else answer  # blue (ONNX), or green's script (10%)
        assert len(labels) == len(sample["data"])
        assert "traffic:cancer" in outputs[4].stdout  # drift names what changed
    finally:
        subprocess.run(["mlops-gitops", "serve", "--stop", "-C", "example-repo"], cwd=checkout, env=env,
                       capture_output=True)
