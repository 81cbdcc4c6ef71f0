"""Who changed what, from which commit and pull request: recorded on every applied change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops_gitops.actor import whoami
from mlops_gitops.plan.model import Change
from mlops_gitops.vcs.git import GitInfo


def base_provenance(git: GitInfo, workspace: str, apply_id: str) -> dict[str, Any]:
    return {**git.provenance(), "applied_by": whoami(), "applied_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "apply_id": apply_id, "workspace": workspace}


def for_change(base: dict[str, Any], change: Change, git: GitInfo, root_prefix: str) -> dict[str, Any]:
    out = dict(base)
    if change.file:
        out["source_file"] = change.file
        out["git.file_uncommitted"] = (root_prefix + change.file) in git.dirty_files
    if change.desired is not None:
        paths = change.desired.derived.get("paths") or {}
        if paths:
            out["content"] = {k: v.get("sha256") or f"dvc:{v.get('dvc')}" for k, v in paths.items()}
            dvc = {k: {"md5": v["dvc"], "path": v.get("tracked")} for k, v in paths.items() if "dvc" in v}
            if dvc:
                out["dvc"] = dvc  # the DVC hash Git records for the data: the lineage of this version
        refs = change.desired.derived.get("refs") or {}
        if refs:
            out["uses"] = refs
    return out
