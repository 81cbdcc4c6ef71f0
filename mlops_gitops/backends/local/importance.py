"""Permutation feature importance of a model version as it is registered (`x-gitops.explain`): an effect,
measured in the model's environment on the declared evaluation data asset and kept in the version's
provenance (as a run's metrics are: no content hash covers it). A measure that fails fails the registration,
so a model under this governance rule never reaches the registry without its importance."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mlops_gitops import progress
from mlops_gitops.backends.local.conversion import Converter, csv_files
from mlops_gitops.backends.local.deploy import azure_layout
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.serving import materialise
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import safe_join, write_private
from mlops_gitops.state import DesiredResource

SCRIPT = Path(__file__).parents[2] / "runtime" / "convert" / "importance.py"
TIMEOUT_S = 1800


class ImportanceError(WorkspaceError):
    pass


def explained(store: LocalStore, hooks: Hooks, desired: DesiredResource) -> dict[str, Any]:
    """The version's importance report (its files already in the store): scorer, baseline, features ranked."""
    declaration = desired.spec["x-gitops"]["explain"]
    data_ref = str((desired.derived.get("refs") or {}).get("x-gitops.explain.data") or declaration["data"])
    here = safe_join(store.path / "importance", desired.address.name, desired.address.version or "new")
    shutil.rmtree(here, ignore_errors=True)
    try:
        data = csv_files(store, data_ref, f"the evaluation data of {desired.address}, data:{data_ref},", here / "data")
    except WorkspaceError as exc:
        raise ImportanceError(str(exc)) from None
    files = azure_layout(desired.spec.get("path"), [(a.rel, a.sha256) for a in desired.artifacts])
    model_dir = materialise(files, store.artifact_path, here / "model")
    converter = Converter(store, hooks)
    env = converter.environment(desired.address, model_dir, list(declaration.get("requirements") or []), "importance")
    python = converter.envs.python(env)
    request = {"model_dir": str(model_dir), "data": data, "label": declaration["label"],
               "drop_columns": list(declaration.get("drop_columns") or []), "rows": int(declaration.get("rows", 500)),
               "repeats": int(declaration.get("repeats", 5)), "scoring": declaration.get("scoring"),
               "output": str(here / "importance.json")}
    write_private(here / "request.json", json.dumps(request))
    with progress.task(f"measuring the feature importance of {desired.address} on data:{data_ref}"):
        try:
            proc = subprocess.run([python, str(SCRIPT), str(here / "request.json")], capture_output=True, text=True,
                                  timeout=TIMEOUT_S, cwd=here)
        except subprocess.TimeoutExpired:
            raise ImportanceError(f"the feature importance of {desired.address} ran past {TIMEOUT_S} s") from None
    write_private(here / "log.txt", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
        raise ImportanceError(f"the feature importance of {desired.address} failed: "
                              f"{lines[0] if proc.returncode == 2 else lines[-1]} (log: {here / 'log.txt'}); "
                              "nothing was registered")
    report = {**json.loads((here / "importance.json").read_text()), "data": data_ref}
    hooks.note(f"{desired.address}: feature importance on data:{data_ref} ({described(report)})")
    return report


def described(report: dict[str, Any], top: int = 3) -> str:
    best = ", ".join(f"{f['name']} {f['mean']:.3g}" for f in (report.get("features") or [])[:top])
    return f"{report.get('scoring')} {report.get('baseline')}; most important: {best or 'none'}"
