"""An effect: DVC-tracked data that is not in the working tree is fetched from its DVC remote."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlops_gitops.addresses import Kind
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import UnsafePathError
from mlops_gitops.hashing import path_manifest
from mlops_gitops.state import ArtifactFile, DesiredResource


def with_dvc_data(desired: DesiredResource, tree_root: Path | None, hooks: Hooks) -> DesiredResource:
    """A DVC-tracked asset whose data is not in the working tree: fetch it with DVC, then list its files."""
    info = (desired.derived.get("paths") or {}).get("path") or {}
    if "tracked" not in info or desired.artifacts or desired.address.kind not in (Kind.MODEL, Kind.DATA):
        return desired
    from mlops_gitops.vcs.dvc import DvcError, fetch, tracked

    if tree_root is None:
        raise WorkspaceError(f"its data ({info['tracked']}) must be fetched with DVC; apply it from its repository")
    path = tree_root / info["tracked"]
    try:
        t = tracked(path)
        if t is None or t.md5 != info["dvc"]:
            raise WorkspaceError(f"{info['tracked']} is not tracked as planned; plan again")
        hooks.note(f"  fetching {t.rel} (md5 {t.md5}) with DVC")
        fetch(t)
    except DvcError as exc:
        raise WorkspaceError(str(exc)) from None
    base = path if path.is_dir() else path.parent
    try:
        manifest = path_manifest(path, tree_root)
    except UnsafePathError as exc:
        raise WorkspaceError(str(exc)) from None
    return replace(desired, artifacts=[ArtifactFile(rel, digest, size, base / rel) for rel, digest, size in manifest])
