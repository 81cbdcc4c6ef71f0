"""plan and apply of N metadata-only resources vs terraform over N terraform_data resources.

Usage: python benchmarks/bench_plan_apply.py [N]   (default 1000)
Prints apply wall time and resources/s, no-change plan wall time (best of 3), and ratios against
Terraform in the same run (terraform must be on PATH; terraform_data needs no provider download).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLOPS, best, run, scratch
from gen_tree import generate


def terraform_config(root: Path, n: int) -> None:
    blocks = [
        f'resource "terraform_data" "r{i:04d}" {{\n  input = {{\n    name = "ep-{i:04d}"\n'
        f'    description = "generated resource {i}"\n    team = "t{i % 7}"\n  }}\n}}\n'
        for i in range(n)
    ]
    (root / "main.tf").write_text("\n".join(blocks))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ours = scratch("plan-apply-tree")
    generate(ours, n)
    apply_s = run([*MLOPS, "apply", str(ours), "--auto-approve"])
    plan_s = best([*MLOPS, "plan", str(ours), "--detailed-exitcode"])  # exit 0: no changes
    print(f"{n} metadata-only resources")
    print(f"  mlops-gitops apply      {apply_s:6.2f} s   {n / apply_s:7.0f} resources/s")
    print(f"  mlops-gitops plan       {plan_s:6.2f} s   (no changes, best of 3)")
    terraform = shutil.which("terraform")
    if terraform is None:
        print("  terraform not found on PATH: no comparison")
        return
    tf = scratch("plan-apply-terraform")
    terraform_config(tf, n)
    (tf / "terraformrc").write_text("")
    env = {"TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": str(tf / "terraformrc"), "CHECKPOINT_DISABLE": "1"}
    run([terraform, "init", "-input=false", "-no-color"], cwd=tf, env=env)
    tf_apply = run([terraform, "apply", "-auto-approve", "-input=false", "-no-color"], cwd=tf, env=env)
    tf_plan = best([terraform, "plan", "-input=false", "-no-color", "-detailed-exitcode"], cwd=tf, env=env)
    print(f"  terraform apply         {tf_apply:6.2f} s   {n / tf_apply:7.0f} resources/s")
    print(f"  terraform plan          {tf_plan:6.2f} s   (no changes, best of 3)")
    print(f"  apply ratio terraform / mlops-gitops: {tf_apply / apply_s:.1f}x")
    print(f"  plan ratio terraform / mlops-gitops:  {tf_plan / plan_s:.1f}x")


if __name__ == "__main__":
    main()
