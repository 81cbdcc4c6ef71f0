"""plan and apply of N metadata-only resources vs terraform over N terraform_data resources.

Usage: python benchmarks/bench_plan_apply.py [N]   (default 1000)
Prints apply wall time and resources/s, no-change plan wall time (best of 3), and ratios against
Terraform in the same run (terraform must be on PATH; terraform_data needs no provider download).
Then the same tree on a shared workspace, PostgreSQL (127.0.0.1:5432) and Azurite's blob store (started by
scripts/ensure-azurite.sh), against the SQLite figures of the same run; skipped with the reason when either
is not reachable. Commands run as an installed CLI does: with bytecode caching on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLOPS, best, compile_package, run, scratch
from gen_tree import generate


def terraform_config(root: Path, n: int) -> None:
    blocks = [
        f'resource "terraform_data" "r{i:04d}" {{\n  input = {{\n    name = "ep-{i:04d}"\n'
        f'    description = "generated resource {i}"\n    team = "t{i % 7}"\n  }}\n}}\n'
        for i in range(n)
    ]
    (root / "main.tf").write_text("\n".join(blocks))


AZURITE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"  # Azurite's documented dev account
           "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
           "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")


def measure(root: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    apply_s = run([*MLOPS, "apply", str(root), "--auto-approve"], env=env)
    plan_s = best([*MLOPS, "plan", str(root), "--detailed-exitcode"], env=env)  # exit 0: no changes
    run([*MLOPS, "serve", "--stop"], cwd=root, env=env)
    return apply_s, plan_s


def shared_workspace(n: int) -> tuple[tuple[float, float] | None, str]:
    """Apply and plan on PostgreSQL + Azurite; (None, why) when they cannot be reached."""
    try:
        import psycopg
        from azure.storage.blob import BlobServiceClient
    except ImportError as exc:
        return None, f"needs {exc.name} (pip install -e '.[test]')"
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        return None, f"PostgreSQL at 127.0.0.1:5432 is not reachable ({str(exc).strip().splitlines()[0]})"
    script = Path(__file__).resolve().parents[1] / "scripts" / "ensure-azurite.sh"
    if subprocess.run(["bash", str(script)], capture_output=True, timeout=300).returncode != 0:
        return None, "Azurite could not be started (scripts/ensure-azurite.sh)"
    service = BlobServiceClient.from_connection_string(AZURITE)
    service.create_container(name.replace("_", "-"))
    try:
        root = scratch("plan-apply-shared")
        generate(root, n)
        (root / "mlops.yaml").write_text(
            "workspaces:\n  shared:\n    path: .mlops/shared\n"
            f"    database: postgresql://postgres@127.0.0.1:5432/{name}\n"
            f"    artifacts: az://{name.replace('_', '-')}/bench\ndefault_workspace: shared\n")
        return measure(root, {"AZURE_STORAGE_CONNECTION_STRING": AZURITE}), ""
    finally:
        service.delete_container(name.replace("_", "-"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ours = scratch("plan-apply-tree")
    generate(ours, n)
    compile_package()
    apply_s, plan_s = measure(ours)
    print(f"{n} metadata-only resources")
    print(f"  mlops-gitops apply      {apply_s:6.2f} s   {n / apply_s:7.0f} resources/s")
    print(f"  mlops-gitops plan       {plan_s:6.2f} s   (no changes, best of 3)")
    shared, why = shared_workspace(n)
    if shared is None:
        print(f"  PostgreSQL + Azurite: skipped: {why}")
    else:
        print(f"  on PostgreSQL + Azurite: apply {shared[0]:6.2f} s ({shared[0] / apply_s:.2f}x SQLite's), "
              f"plan {shared[1]:6.2f} s ({shared[1] / plan_s:.2f}x SQLite's)")
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
