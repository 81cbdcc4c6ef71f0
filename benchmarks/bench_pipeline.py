"""Pipeline runner overhead against `dvc repro`: the same 20 trivial steps, first run and fully reused rerun.

    python benchmarks/bench_pipeline.py [STEPS]

Both tools run each step as a shell command in the same Git repository; each step reads the folder
the previous one wrote and writes its own. Prints wall seconds of whole commands (interpreter start
included, best of 3 for reruns) and the ratios. Goal: a fully reused rerun of 20 steps in under 1 s,
and at least as fast as `dvc repro` on the same pipeline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from _common import best, run, scratch

AZ = "https://azuremlschemas.azureedge.net/latest"


def step_command(i: int) -> str:
    # the same trivial work in both tools: read the previous folder (if any), write one file
    return f"mkdir -p {{out}} && (cat {{inp}}/x 2>/dev/null; echo step{i}) > {{out}}/x"


def ours(root: Path, steps: int) -> None:
    (root / "mlops.yaml").write_text("workspaces:\n  dev: {path: .mlops/dev, runtime: process}\n"
                                     "default_workspace: dev\nexclude: [dvc.yaml, dvc.lock]\n")
    jobs = []
    for i in range(steps):
        inp = "${{inputs.prev}}" if i else "/nonexistent"
        command = step_command(i).format(out="${{outputs.out}}", inp=inp)
        inputs = f"    inputs:\n      prev: ${{{{parent.jobs.s{i - 1}.outputs.out}}}}\n" if i else ""
        jobs.append(f"  s{i}:\n    type: command\n    command: '{command}'\n{inputs}    outputs:\n      out: {{}}\n")
    (root / "pipeline.yml").write_text(f"$schema: {AZ}/pipelineJob.schema.json\ntype: pipeline\nname: bench\n"
                                       f"jobs:\n{''.join(jobs)}")


def dvc(root: Path, steps: int) -> None:
    stages = []
    for i in range(steps):
        command = step_command(i).format(out=f"out{i}", inp=f"out{i - 1}" if i else "/nonexistent")
        deps = f"    deps: [out{i - 1}]\n" if i else ""
        stages.append(f"  s{i}:\n    cmd: {command}\n{deps}    outs: [out{i}]\n")
    (root / "dvc.yaml").write_text("stages:\n" + "".join(stages))


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    dvc_bin = shutil.which("dvc")
    if dvc_bin is None:
        sys.exit("dvc is not installed (pip install -e .)")
    root = scratch("pipeline")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([dvc_bin, "init", "-q"], cwd=root, check=True)
    ours(root, steps)
    dvc(root, steps)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@example.com", "commit", "-qm", "bench"],
                   cwd=root, check=True)
    cli = [sys.executable, "-m", "mlops_gitops"]
    ours_first = run([*cli, "job", "run", "pipeline.yml"], cwd=root)
    dvc_first = run([dvc_bin, "repro", "-q"], cwd=root)
    ours_again = best([*cli, "job", "run", "pipeline.yml"], cwd=root)
    dvc_again = best([dvc_bin, "repro", "-q"], cwd=root)
    print(f"{steps} trivial steps, wall seconds of the whole command")
    print(f"  first run:          mlops-gitops job run {ours_first:6.2f}   dvc repro {dvc_first:6.2f}   "
          f"ratio {dvc_first / ours_first:4.1f}x")
    print(f"  fully reused rerun: mlops-gitops job run {ours_again:6.2f}   dvc repro {dvc_again:6.2f}   "
          f"ratio {dvc_again / ours_again:4.1f}x")
    print(f"  per step (first run): mlops-gitops {1000 * ours_first / steps:5.1f} ms   "
          f"dvc {1000 * dvc_first / steps:5.1f} ms")
    goal = ours_again < 1.0 and ours_again <= dvc_again
    print(f"  goal (reused rerun under 1 s and no slower than dvc repro): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
