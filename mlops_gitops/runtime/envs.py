"""Build deployment environments as virtual environments, shared by the hash of what they install.

From a conda file we take its `pip:` entries (conda-only packages are reported as skipped, not
guessed at); from a build context, its requirements.txt. The venv is built in a temporary folder and
renamed into envs/<hash>/ when complete, so an interrupted build is simply rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops.fsutil import ensure_dir, open_lock, write_private


class EnvironmentError_(Exception):
    pass


@dataclass(frozen=True)
class ResolvedEnv:
    requirements: tuple[str, ...]
    python: str | None  # the conda file's python pin, if any
    skipped: tuple[str, ...] = field(default=())  # conda-only entries we do not install

    @property
    def digest(self) -> str:
        text = json.dumps({"requirements": sorted(self.requirements), "python": f"{sys.version_info[:2]}"})
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def resolve_conda(conda: dict[str, Any]) -> ResolvedEnv:
    reqs: list[str] = []
    skipped: list[str] = []
    python = None
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            reqs.extend(str(r) for r in dep["pip"] or [])
        elif isinstance(dep, str):
            name = dep.split("=")[0].split("<")[0].split(">")[0].strip()
            if name == "python":
                python = dep
            elif name != "pip":
                skipped.append(dep)
    return ResolvedEnv(tuple(reqs), python, tuple(skipped))


def resolve_requirements(text: str) -> ResolvedEnv:
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return ResolvedEnv(tuple(line for line in lines if line), None)


def ensure_env(envs_dir: Path, resolved: ResolvedEnv, log: Any = print) -> Path:
    """The Python interpreter of a venv with `resolved` installed, building it on first use."""
    target = envs_dir / resolved.digest
    python = target / "bin" / "python"
    if (target / ".complete").exists():
        return python
    ensure_dir(envs_dir)
    # Deployments and pipeline steps that share an environment wait for one build instead of racing.
    with open_lock(envs_dir / f".{resolved.digest}.lock") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return python
        return _build(envs_dir, target, resolved, log)


def installer() -> str | None:
    """uv's binary (the `uv` package is a dependency), unless MLOPS_GITOPS_INSTALLER=pip asks for pip."""
    if os.environ.get("MLOPS_GITOPS_INSTALLER", "").lower() == "pip":
        return None
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _uv_environment() -> dict[str, str]:
    """uv reads UV_* settings, not pip's: carry pip's index settings over where uv has none of its own."""
    env = dict(os.environ)
    for pip_name, uv_name in (("PIP_INDEX_URL", "UV_INDEX_URL"), ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
                              ("PIP_FIND_LINKS", "UV_FIND_LINKS")):
        if env.get(pip_name) and not env.get(uv_name):
            env[uv_name] = env[pip_name]
    return env


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, umask=0o077, env=_uv_environment(),
                          stdin=subprocess.DEVNULL)


def _build(envs_dir: Path, target: Path, resolved: ResolvedEnv, log: Any) -> Path:
    python = target / "bin" / "python"
    if resolved.skipped:
        log(f"  conda-only dependencies skipped in the local process runtime: {', '.join(resolved.skipped)} "
            "(list them under pip: to install them locally)")
    if resolved.python and not resolved.python.replace("python", "").lstrip("=").startswith(
            f"{sys.version_info[0]}.{sys.version_info[1]}"):
        log(f"  the conda file asks for {resolved.python}; the local runtime uses Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}")
    ensure_dir(envs_dir)
    staging = envs_dir / f".build-{resolved.digest}-{uuid.uuid4().hex}"
    shutil.rmtree(staging, ignore_errors=True)
    uv = installer()
    tool = "uv pip" if uv else "pip"
    log(f"  building environment {resolved.digest}: {tool} install {' '.join(resolved.requirements) or '(nothing)'}")
    ensure_dir(staging)
    # Processes of their own with umask 077: another thread may set this process's umask to 0 (DVC does)
    made = _run([uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(staging)] if uv else
                [sys.executable, "-m", "venv", "--symlinks", str(staging)])
    if made.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise EnvironmentError_(f"could not create a virtual environment: {(made.stderr or made.stdout).strip()}")
    if resolved.requirements:
        interpreter = str(staging / "bin" / "python")
        proc = _run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", interpreter,
                     *resolved.requirements] if uv else
                    [interpreter, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                     *resolved.requirements])
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise EnvironmentError_(f"{tool} could not install the environment's packages:\n{tail}")
    write_private(staging / "requirements.json", json.dumps(list(resolved.requirements)))
    write_private(staging / ".complete", "ok")
    try:
        os.rename(staging, target)
    except OSError:  # another process finished the same environment first
        shutil.rmtree(staging, ignore_errors=True)
    # venv scripts embed the staging path; the interpreter symlink does not, so bin/python works.
    return python
