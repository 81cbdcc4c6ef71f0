"""`mlops-gitops metrics diff REV_A [REV_B]`: step metrics of the runs made at two commits, side by side."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError
from mlops_gitops.vcs.git import resolve_revision


def _change(old: Any, new: Any) -> Any:
    if isinstance(old, int | float) and isinstance(new, int | float) and not isinstance(old, bool):
        return round(new - old, 10)
    return None


def metrics_diff(rev_a: str, rev_b: str = "HEAD", path: str = ".", workspace: str | None = None,
                 pipeline: str | None = None, fmt: str = "text", show_all: bool = False) -> int:
    project = open_project(path)
    shas = []
    for rev in (rev_a, rev_b):
        sha = resolve_revision(project.root, rev)
        if sha is None:
            raise ConfigError(f"'{rev}' is not a commit of the repository at {project.root}")
        shas.append(sha)
    with workspace_backend(project, workspace) as (_, backend):
        from mlops_gitops.commands.jobs import runs_of

        records = runs_of(backend)
        (old, old_runs), (new, new_runs) = (records.metrics_at(sha, pipeline) for sha in shas)
    for rev, sha, runs in ((rev_a, shas[0], old_runs), (rev_b, shas[1], new_runs)):
        if not runs:
            raise ConfigError(f"no completed run at {rev} ({sha[:12]}) in this workspace: run the pipeline there "
                              "first (git checkout, then mlops-gitops job run or apply)")
    rows = [{"metric": key, "old": old.get(key), "new": new.get(key), "change": _change(old.get(key), new.get(key))}
            for key in sorted(set(old) | set(new)) if show_all or old.get(key) != new.get(key)]
    if fmt == "json":
        out(json.dumps({"a": {"rev": rev_a, "commit": shas[0], "runs": old_runs},
                        "b": {"rev": rev_b, "commit": shas[1], "runs": new_runs}, "metrics": rows}, indent=2))
        return EXIT_OK
    if not rows:
        out(f"No metric changed between {rev_a} and {rev_b}.")
        return EXIT_OK
    cells = [["Metric", rev_a, rev_b, "Change"]] + [
        [r["metric"], _fmt(r["old"]), _fmt(r["new"]), _fmt(r["change"])] for r in rows]
    if fmt == "md":
        out("| " + " | ".join(cells[0]) + " |\n|" + "---|" * 4)
        out("\n".join("| " + " | ".join(row) + " |" for row in cells[1:]))
        return EXIT_OK
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    for row in cells:
        out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return EXIT_OK


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops metrics diff HEAD~1 -C example-repo")
    a = sub.add_parser("diff", help="step metrics of the runs at two commits (like dvc metrics diff)")
    a.add_argument("rev_a", metavar="REV_A", help="the older Git revision (commit, branch, tag, HEAD~1)")
    a.add_argument("rev_b", metavar="REV_B", nargs="?", default="HEAD", help="the newer revision (default: HEAD)")
    a.add_argument("--pipeline", metavar="NAME", help="only this pipeline job (its name: in the YAML)")
    a.add_argument("--all", dest="show_all", action="store_true", help="also the metrics that did not change")
    args.fmt(a, "text", "json", "md")
    args.workspace(a)
    args.examples(a, "mlops-gitops metrics diff HEAD~1 -C example-repo",
                  "mlops-gitops metrics diff main HEAD --pipeline train-cancer-classifier --format md -C example-repo")
    a.set_defaults(run=metrics_diff)
