"""validate vs check-jsonschema: on an applied example-repo (the pre-commit case) and on N generated files.

Usage: python benchmarks/bench_validate.py [N]   (default 1000)
First the 14 files of example-repo/, copied and applied to its embedded workspace (runtime `none`: state
only), so that `validate` checks versions against the workspace and DVC's record of the data: the whole
process of `validate`, of `validate --offline` and of check-jsonschema on the same files with our
generated schemas (one run per kind, summed), best of 7. Then a generated tree of N resource files, best of
3. check-jsonschema is installed into benchmarks/.work/venv-check-jsonschema on first use.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HERE, MLOPS, best, compile_package, run, scratch, tool_venv
from gen_tree import generate

from mlops_gitops.spec.jsonschema import SCHEMA_DIR


def check_jsonschema(by_kind: dict[str, list[Path]], repeat: int) -> float:
    cjs = tool_venv("check-jsonschema", ["check-jsonschema"]) / "check-jsonschema"
    # check-jsonschema takes one schema per run: one run per kind, summed (it checks schemas only).
    return sum(best([str(cjs), "--schemafile", str(SCHEMA_DIR / f"{kind}.schema.json"), *map(str, files)],
                    repeat) for kind, files in by_kind.items())


def example_repo() -> tuple[Path, dict[str, list[Path]]]:
    """An applied copy of example-repo and its resource files by kind (from their `$schema`)."""
    root = scratch("validate-example") / "example-repo"
    shutil.copytree(HERE.parent / "example-repo", root, ignore=shutil.ignore_patterns(".mlops", "__pycache__"))
    run([*MLOPS, "apply", str(root), "--auto-approve"], env={"MLOPS_GITOPS_RUNTIME": "none"})
    by_kind: dict[str, list[Path]] = defaultdict(list)
    for path in sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")]):
        if ".mlops" in path.parts or ".github" in path.parts:
            continue
        found = re.search(r"^\$schema:\s*(\S+)", path.read_text(), re.M)
        if found and (SCHEMA_DIR / found[1].rsplit("/", 1)[-1]).exists():
            by_kind[found[1].rsplit("/", 1)[-1].removesuffix(".schema.json")].append(path)
    return root, by_kind


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    compile_package()
    root, by_kind = example_repo()
    files = sum(len(f) for f in by_kind.values())
    online = best([*MLOPS, "validate", str(root)], 7)
    offline = best([*MLOPS, "validate", "--offline", str(root)], 7)
    theirs = check_jsonschema(by_kind, 7)
    print(f"validate an applied example-repo ({files} resource files; goal: under 0.30 s, within 0.10 s of --offline)")
    print(f"  mlops-gitops validate             {online:6.3f} s   (schemas, rules, versions against the workspace)")
    print(f"  mlops-gitops validate --offline   {offline:6.3f} s   (difference {online - offline:+.3f} s)")
    print(f"  check-jsonschema ({len(by_kind)} runs)       {theirs:6.3f} s   (schemas only)")

    tree = scratch("validate-tree")
    generated = generate(tree, n)
    ours_offline = best([*MLOPS, "validate", "--offline", str(tree)])
    ours_cold_ws = best([*MLOPS, "validate", str(tree)])
    theirs = check_jsonschema(generated, 3)
    print(f"validate {n} generated files")
    print(f"  mlops-gitops validate --offline   {ours_offline:6.2f} s   (schemas + semantic rules)")
    print(f"  mlops-gitops validate             {ours_cold_ws:6.2f} s   (also looks for a workspace)")
    print(f"  check-jsonschema ({len(generated)} runs)       {theirs:6.2f} s   (schemas only)")
    print(f"  ratio check-jsonschema / mlops-gitops: {theirs / ours_offline:.1f}x")


if __name__ == "__main__":
    main()
