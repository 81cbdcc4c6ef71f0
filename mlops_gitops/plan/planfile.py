"""Saved plans: `plan --out plan.json` writes one; `apply plan.json` reads it back and checks it."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops import jsonload
from mlops_gitops.errors import PlanFileError
from mlops_gitops.fsutil import FileTooLargeError, UnsafePathError, read_limited
from mlops_gitops.hashing import canonical_json
from mlops_gitops.plan.model import FORMAT_VERSION, Plan
from mlops_gitops.plan.render.jsonout import plan_to_dict

MAX_PLAN_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class SavedPlan:
    path: Path
    workspace: str
    workspace_id: str | None
    serial: int
    root: str
    commit: str | None
    prune: bool
    fingerprint: str
    has_changes: bool
    document: dict[str, Any] = field(default_factory=dict, repr=False)  # as read, for the signature
    signature: str = ""

    def signed_by(self, key: bytes | None) -> bool:
        """Whether the whole document — what apply executes and what it shows — is as the workspace signed it."""
        return key is not None and hmac.compare_digest(self.signature, _signature(self.document, key))


def _signature(document: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in document.items() if k != "signature"}
    return "hmac-sha256:" + hmac.new(key, canonical_json(body).encode(), hashlib.sha256).hexdigest()


def save_plan(plan: Plan, path: Path, key: bytes) -> None:
    """Write the plan with an HMAC over the whole document, keyed by the workspace's secret."""
    data = plan_to_dict(plan)
    data["signature"] = _signature(data, key)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _need(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data or not isinstance(data[key], kind):
        raise PlanFileError(f"{where}: not an mlops-gitops plan (field '{key}' missing or wrong type)")
    return data[key]


def load_plan(path: Path) -> SavedPlan:
    where = str(path)
    try:
        raw = read_limited(path, MAX_PLAN_BYTES).decode("utf-8")
    except (FileTooLargeError, UnsafePathError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"cannot read plan file {where}: {exc}") from None
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {where}: {exc.strerror or exc}") from None
    try:
        data = jsonload.loads(raw)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"{where}:{exc.lineno}:{exc.colno}: plan file is corrupt: {exc.msg}") from None
    except jsonload.JSONDepthError as exc:
        raise PlanFileError(f"{where}:{exc.line}:{exc.column}: not an mlops-gitops plan: {exc}") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{where}: not an mlops-gitops plan (expected a JSON object)")
    version = _need(data, "format_version", str, where)
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise PlanFileError(f"{where}: plan format {version} is not supported (this tool writes {FORMAT_VERSION})")
    ws = _need(data, "workspace", dict, where)
    source = _need(data, "source", dict, where)
    summary = _need(data, "summary", dict, where)
    key = "workspace_id" if "workspace_id" in ws else "lineage"  # plans written before 0.x named it lineage
    workspace_id = ws.get(key)
    if workspace_id is not None and not isinstance(workspace_id, str):
        raise PlanFileError(f"{where}: workspace.{key} must be a string")
    return SavedPlan(
        path=path,
        workspace=_need(ws, "name", str, where),
        workspace_id=workspace_id,
        serial=_need(ws, "serial", int, where),
        root=_need(source, "root", str, where),
        commit=source.get("commit") if isinstance(source.get("commit"), str) else None,
        prune=bool(data.get("prune", False)),
        fingerprint=_need(data, "fingerprint", str, where),
        has_changes=bool(summary.get("has_changes", True)),
        document=data,
        signature=str(data.get("signature") or ""),
    )
