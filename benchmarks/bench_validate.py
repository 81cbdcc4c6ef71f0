"""validate of a generated tree of N resource files vs check-jsonschema on the same files and schemas.

Usage: python benchmarks/bench_validate.py [N]   (default 1000)
Prints wall seconds (best of 3) for each tool and the ratio. check-jsonschema is installed into
benchmarks/.work/venv-check-jsonschema on first use.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLOPS, best, scratch, tool_venv
from gen_tree import generate

from mlops_gitops.spec.jsonschema import SCHEMA_DIR


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    root = scratch("validate-tree")
    by_kind = generate(root, n)
    ours_offline = best([*MLOPS, "validate", "--offline", str(root)])
    ours_cold_ws = best([*MLOPS, "validate", str(root)])
    cjs = tool_venv("check-jsonschema", ["check-jsonschema"]) / "check-jsonschema"
    # check-jsonschema takes one schema per run: one run per kind, summed (it checks schemas only).
    theirs = 0.0
    for kind, files in by_kind.items():
        theirs += best([str(cjs), "--schemafile", str(SCHEMA_DIR / f"{kind}.schema.json"), *map(str, files)])
    print(f"validate {n} files")
    print(f"  mlops-gitops validate --offline   {ours_offline:6.2f} s   (schemas + semantic rules)")
    print(f"  mlops-gitops validate             {ours_cold_ws:6.2f} s   (also looks for a workspace)")
    print(f"  check-jsonschema ({len(by_kind)} runs)       {theirs:6.2f} s   (schemas only)")
    print(f"  ratio check-jsonschema / mlops-gitops: {theirs / ours_offline:.1f}x")


if __name__ == "__main__":
    main()
