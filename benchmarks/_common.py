"""Shared by the benchmark scripts: timing of whole commands, a scratch folder, a private venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
# Commands run as an installed CLI does: its modules compiled once (some machines turn this off).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def compile_package() -> None:
    """Write the package's bytecode, as installing it does, so the first timed run does not pay for it."""
    import mlops_gitops

    run([sys.executable, "-m", "compileall", "-q", str(Path(mlops_gitops.__file__).parent)])


def scratch(name: str) -> Path:
    path = WORK / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one run of a command; fails loudly if it exits with an unexpected code."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def best(cmd: list[str], repeat: int = 3, **kw: object) -> float:
    return min(run(cmd, **kw) for _ in range(repeat))  # type: ignore[arg-type]


def tool_venv(name: str, packages: list[str]) -> Path:
    """A private virtual environment for a peer tool, created once and reused."""
    path = WORK / f"venv-{name}"
    python = path / "bin" / "python"
    if not python.exists():
        venv.create(path, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return path / "bin"


MLOPS = [sys.executable, "-m", "mlops_gitops"]
