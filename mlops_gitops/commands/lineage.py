"""`mlops-gitops lineage RESOURCE|RUN`: where a model, data asset, run or deployment came from and what uses it."""

from __future__ import annotations

from mlops_gitops.backends.local.lineage import build_lineage
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.lineage.graph import RENDERERS


def lineage(resource: str, path: str = ".", workspace: str | None = None, fmt: str = "text", depth: int = 4) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        graph = build_lineage(backend, resource, depth)
    out(RENDERERS[fmt](graph))
    return EXIT_OK
