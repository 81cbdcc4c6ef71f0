"""`mlops-gitops lineage RESOURCE|RUN`: where a model, data asset, run or deployment came from and what uses it."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import NotFoundError
from mlops_gitops.lineage.build import build_lineage, health_of
from mlops_gitops.lineage.graph import RENDERERS


def lineage(resource: str, path: str = ".", workspace: str | None = None, fmt: str = "text", depth: int = 4) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        snapshot = backend.read()
        runs = backend.runs
        records = [(r, runs.steps(r.id)) for r in runs.all()] if runs is not None and backend.has_state() else []
        serving = backend.serving
        health = health_of(serving.status() if serving is not None else None, serving is not None)
        monitors = getattr(backend, "monitors", None)
        watched = _monitor_runs(monitors, resource) if monitors is not None else []
    out(RENDERERS[fmt](build_lineage(snapshot, records, health, resource, depth, watched)))
    return EXIT_OK


def _monitor_runs(monitors: Any, resource: str) -> list[dict[str, Any]]:
    """The latest runs of each monitor, and the one asked for when it is older."""
    found = monitors.recent()
    asked = resource.removeprefix("monitor-run:")
    if ":" not in asked and all(r["id"] != asked for r in found):  # a run ID, perhaps an older monitor run's
        with contextlib.suppress(NotFoundError):  # the builder says what is not there
            found.append(monitors.get(asked))
    return list(found)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resource", metavar="RESOURCE|RUN",
                   help="an address (model:cancer-onnx:1; model:cancer-onnx for the latest version), a run ID, "
                        "or a monitor run's (monitor-run:ID)")
    args.fmt(p, "text", "json", "mermaid", "dot")
    p.add_argument("--depth", type=int, default=4, help="how many steps to follow each way (default 4)")
    args.workspace(p)
    args.examples(p, "mlops-gitops lineage model:cancer-onnx:1 -C example-repo",
                  "mlops-gitops lineage online-deployment:cancer/blue --format mermaid -C example-repo")
    p.set_defaults(run=lineage)
