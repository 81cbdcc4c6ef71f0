"""Build deployment and step environments as virtual environments, shared by the hash of what they install.

A conda file's dependencies are translated to PyPI requirements (runtime/conda.py; its `pip:` entries as
they are), a build context gives its requirements.txt. The Python the file asks for is used when one is
installed here (else the nearest, said once). The venv is built where it will live, envs/<hash>/, under a
lock, and marked complete last: an interrupted build is removed and rebuilt, and every script in its bin/
points at its own interpreter.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops import progress
from mlops_gitops.fsutil import ensure_dir, open_lock, write_private
from mlops_gitops.runtime.conda import translate


class EnvironmentError_(Exception):
    pass


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int, int]
    note: str = ""  # why it is not the one asked for (said once, when the environment is built)


@dataclass(frozen=True)
class ResolvedEnv:
    requirements: tuple[str, ...]
    python: str | None  # the Python the file asks for, as a PEP 440 specifier ("==3.10.*"), if any
    skipped: tuple[str, ...] = field(default=())  # conda entries with no PyPI equivalent (not installed)
    relax: bool = False  # pins chosen for another Python (curated environments): relaxed when no wheel fits

    @property
    def interpreter(self) -> Interpreter:
        return choose_python(self.python)

    @property
    def digest(self) -> str:
        text = json.dumps({"requirements": sorted(self.requirements), "python": f"{self.interpreter.version[:2]}"})
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def conda_mapping(text: str, what: str = "the conda file") -> dict[str, Any]:
    """A conda file's YAML (an environment's, a Docker context's, an MLflow model's conda.yaml)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(text)
    if not isinstance(data, dict):
        raise EnvironmentError_(f"{what} is not a mapping")
    return data


def resolve_conda(conda: dict[str, Any]) -> ResolvedEnv:
    found = translate(conda)
    return ResolvedEnv(found.requirements, found.python, found.dropped)


def _satisfies(version: tuple[int, int, int], spec: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(spec).contains(".".join(map(str, version)), prereleases=True)
    except InvalidSpecifier:
        return True  # a pin we cannot read is not worth refusing the interpreter we have


def _version_of(python: str) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:3])"], capture_output=True,
                             text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1]), int(parts[2])) if out.returncode == 0 and len(parts) == 3 else None


def _candidates(spec: str) -> list[str]:
    """Interpreters installed here that might match: what uv finds (PATH, uv-managed), then pyenv's."""
    found = []
    uv = installer()
    if uv:
        try:
            out = subprocess.run([uv, "python", "find", spec], capture_output=True, text=True, timeout=30,
                                 env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"}, stdin=subprocess.DEVNULL)
            if out.returncode == 0 and out.stdout.strip():
                found.append(out.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError):
            pass
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        found += sorted(str(p) for p in root.glob("*/bin/python3")
                        if re.fullmatch(r"\d+\.\d+\.\d+", p.parent.parent.name))
    return found


@functools.lru_cache(maxsize=64)
def choose_python(spec: str | None) -> Interpreter:
    """The interpreter for an environment that asks for `spec`: this one when it fits, else an installed one
    that fits, else the nearest installed (by minor version), with a note saying so."""
    here = Interpreter(sys.executable, (sys.version_info[0], sys.version_info[1], sys.version_info[2]))
    if not spec or _satisfies(here.version, spec):
        return here
    seen: list[Interpreter] = [here]
    for path in _candidates(spec):
        version = _version_of(path)
        if version is None or version[0] != 3:
            continue
        if _satisfies(version, spec):
            return Interpreter(path, version)
        seen.append(Interpreter(path, version))
    wanted = re.search(r"3\.(\d+)", spec)
    minor = int(wanted.group(1)) if wanted else here.version[1]
    nearest = min(seen, key=lambda i: (abs(i.version[1] - minor), i is not here))
    return Interpreter(nearest.path, nearest.version,
                       note=f"asks for Python {spec.lstrip('=')}, which is not installed here: it uses Python "
                            f"{nearest.version[0]}.{nearest.version[1]}, the nearest that is")


def resolve_requirements(text: str) -> ResolvedEnv:
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return ResolvedEnv(tuple(line for line in lines if line), None)


def ensure_env(envs_dir: Path, resolved: ResolvedEnv, log: Any = print, label: str = "",
               built: Callable[[], None] | None = None) -> Path:
    """The Python interpreter of a venv with `resolved` installed, building it on first use; `built` is
    called once, by the one caller that built it (others that waited for that build are not)."""
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
        n = len(resolved.requirements)
        with progress.task(f"building {label or 'environment'} ({n} package{'s' if n != 1 else ''})"):
            python = _build(envs_dir, target, resolved, log, label)
    if built is not None:
        built()
    return python


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


def _install(uv: str | None, python: Path, requirements: list[str],
             extra: list[str]) -> subprocess.CompletedProcess[str]:
    return _run([uv, "pip", "install", "--quiet", "--python", str(python), *extra,
                 *requirements] if uv else
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements])


_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*(?:\[[^\]]*\])?)\s*(?:==|~=)\s*"
                  r"(?P<version>[0-9][^,;\s]*?)(?:\.\*)?$")


def _relax_pins(uv: str, python: Path, requirements: list[str]) -> list[str] | None:
    """Each exact or compatible pin replaced by the lowest release at or above it that has a wheel for this
    interpreter (uv resolves `name>=pin` with the lowest versions); None when even that does not resolve."""
    pinned = {i: m for i, r in enumerate(requirements) if (m := _PIN.match(r.strip()))}
    if not pinned:
        return None
    lower = "\n".join(f"{m.group('name')}>={m.group('version')}" for m in pinned.values())
    proc = subprocess.run([uv, "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--no-build",
                           "--resolution", "lowest-direct", "--python", str(python)], input=lower, capture_output=True,
                          text=True, env=_uv_environment(), timeout=600)
    if proc.returncode != 0:
        return None
    chosen = {}
    for line in proc.stdout.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            chosen[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    out = list(requirements)
    for i, m in pinned.items():
        picked = chosen.get(re.sub(r"[-_.]+", "-", m.group("name").split("[")[0]).lower())
        if picked is not None:
            out[i] = f"{m.group('name')}=={picked}"
    return out


def _build(envs_dir: Path, target: Path, resolved: ResolvedEnv, log: Any, label: str = "") -> Path:
    """Build in place (under the caller's lock): scripts in bin/ then name the interpreter they will run."""
    python = target / "bin" / "python"
    what = f"{label or 'environment'} ({resolved.digest[:12]})"
    interpreter = resolved.interpreter
    if resolved.skipped:
        log(f"  {what}: not installed, no PyPI equivalent: {', '.join(resolved.skipped)}")
    if interpreter.note:
        log(f"  {what}: {interpreter.note}")
    ensure_dir(envs_dir)
    shutil.rmtree(target, ignore_errors=True)  # what an interrupted build left
    uv = installer()
    tool = "uv pip" if uv else "pip"
    started = time.monotonic()
    log(f"  building {what}: a virtual environment on Python "
        f"{interpreter.version[0]}.{interpreter.version[1]}")
    # Processes of their own with umask 077: another thread may set this process's umask to 0 (DVC does)
    made = _run([uv, "venv", "--quiet", "--seed", "--python", interpreter.path, str(target)] if uv else
                [interpreter.path, "-m", "venv", "--symlinks", str(target)])
    if made.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise EnvironmentError_(f"could not create a virtual environment: {(made.stderr or made.stdout).strip()}")
    requirements = list(resolved.requirements)
    if requirements:
        log(f"  building {what}: {tool} install {' '.join(requirements)}")
        # pins made for another Python: wheels only, so that a pin without one fails at once instead of building
        wheels_only = ["--no-build"] if resolved.relax and uv else []
        proc = _install(uv, python, requirements, wheels_only)
        if proc.returncode != 0 and resolved.relax and uv:
            relaxed = _relax_pins(uv, python, requirements)
            if relaxed is not None and relaxed != requirements:
                changed = [f"{a} -> {b.split('==')[1]}" for a, b in zip(requirements, relaxed, strict=True) if a != b]
                log(f"  {what}: no wheel for Python {interpreter.version[0]}.{interpreter.version[1]} fits its pins; "
                    f"it gets the nearest releases that have one: {', '.join(changed)}")
                requirements = relaxed
                proc = _install(uv, python, requirements, [])
        if proc.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise EnvironmentError_(f"{tool} could not install the environment's packages:\n{tail}")
    write_private(target / "requirements.json", json.dumps(requirements))
    write_private(target / ".complete", "ok")  # last: a build without it is rebuilt
    log(f"  built {what} in {time.monotonic() - started:.1f} s")
    return python
