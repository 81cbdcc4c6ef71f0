"""The first apply of example-repo from an empty workspace, environment build included, with uv (the
default) against the same apply with the environment built by plain pip (MLOPS_GITOPS_INSTALLER=pip), in
the same run and both on a warm package cache (each is run once before it is measured).

Usage: python benchmarks/bench_env_build.py
Prints the whole apply's wall time and the environment build's own time (from the apply's progress lines)
for each installer, and the ratios. Goal: the uv apply under 10 s, its build at least 3x faster than pip's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLOPS, scratch

EXAMPLE = Path(__file__).resolve().parents[1] / "example-repo"
BUILT = re.compile(r"built environment \S+ \(\w+\) in ([0-9.]+) s")


def first_apply(installer: str) -> tuple[float, float]:
    """(apply seconds, environment build seconds) of a fresh copy of example-repo."""
    root = scratch(f"env-build-{installer}")
    shutil.rmtree(root)
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlops"))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=bench", "-c", "user.email=bench@example.com",
                                                  "commit", "-q", "-m", "example"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    env = {"MLOPS_GITOPS_RUNTIME": "process", "MLOPS_GITOPS_INSTALLER": installer}
    start = time.perf_counter()
    proc = subprocess.run([*MLOPS, "apply", str(root), "--auto-approve"], capture_output=True, text=True,
                          env={**os.environ, **env})
    elapsed = time.perf_counter() - start
    subprocess.run([*MLOPS, "serve", "--stop"], cwd=root, capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"apply with {installer} failed:\n{proc.stderr[-2000:]}")
    builds = [float(m.group(1)) for m in BUILT.finditer(proc.stderr)]
    if not builds:
        sys.exit(f"apply with {installer} built no environment (was the workspace empty?)")
    return elapsed, sum(builds)


def main() -> None:
    results = {}
    for installer in ("uv", "pip"):
        first_apply(installer)  # warms the package cache of that installer
        results[installer] = first_apply(installer)
    (uv_apply, uv_build), (pip_apply, pip_build) = results["uv"], results["pip"]
    print("first apply of example-repo (empty workspace, warm package cache)")
    print(f"  with uv    apply {uv_apply:6.2f} s   environment build {uv_build:6.2f} s")
    print(f"  with pip   apply {pip_apply:6.2f} s   environment build {pip_build:6.2f} s")
    print(f"  build ratio pip / uv: {pip_build / uv_build:.1f}x   apply ratio pip / uv: {pip_apply / uv_apply:.1f}x")


if __name__ == "__main__":
    main()
