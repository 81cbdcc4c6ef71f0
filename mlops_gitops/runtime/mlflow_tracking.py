"""What a step logged with MLflow, read from the file store the step was pointed at.

Each step runs with MLFLOW_TRACKING_URI (and the registry URI) set to a file store in its own folder,
as Azure ML points jobs at the workspace. After the step the toolkit reads that store's files, never
importing MLflow: params, the last value of each metric, user tags, the models the step logged, and
the models it registered (`mlflow.register_model`), which become versions in the workspace registry.
The layout read is MLflow's file store (`<experiment>/<run>/{params,metrics,tags,artifacts}`,
MLflow 3's `<experiment>/models/<model id>/artifacts`, `models/<name>/version-<n>/meta.yaml`).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORE_FOLDER = "mlruns"


@dataclass
class Tracked:
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    models: dict[str, Path] = field(default_factory=dict)  # logged model name -> its folder (holds MLmodel)
    registered: list[tuple[str, str]] = field(default_factory=list)  # (registered name, logged model name)

    @property
    def empty(self) -> bool:
        return not (self.params or self.metrics or self.tags or self.models)


def tracking_environment(step_dir: Path, experiment: str, given: dict[str, str]) -> dict[str, str]:
    """Variables that point MLflow at the step's store (unless the step names a tracking server itself)."""
    if "MLFLOW_TRACKING_URI" in given:
        return {}
    uri = (step_dir / STORE_FOLDER).as_uri()
    return {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true",
            "MLFLOW_EXPERIMENT_NAME": given.get("MLFLOW_EXPERIMENT_NAME", experiment)}


def _meta(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except Exception:  # a half-written or foreign file: nothing to learn from it
        return {}
    return data if isinstance(data, dict) else {}


def _values(folder: Path) -> dict[str, str]:
    """params/ and tags/: one file per key (keys may hold '/'), the value its text."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8", errors="replace").strip()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _metrics(folder: Path) -> dict[str, float]:
    """metrics/: lines of `timestamp value step`; the value at the highest step (then the latest)."""
    out: dict[str, float] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.rglob("*")):
        points = []
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines() if p.is_file() else []:
            parts = line.split()
            try:
                points.append((int(parts[2]) if len(parts) > 2 else 0, int(parts[0]), float(parts[1])))
            except (IndexError, ValueError):
                continue
        if points:
            out[p.relative_to(folder).as_posix()] = max(points)[2]
    return out


def _inside(path: Path, root: Path) -> Path | None:
    resolved = path.resolve()
    return resolved if resolved.is_relative_to(root.resolve()) and (resolved / "MLmodel").is_file() else None


def _location(uri: str, root: Path) -> Path | None:
    if uri.startswith("file:"):
        return _inside(Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path)), root)
    return None


def read_store(root: Path) -> Tracked:
    found = Tracked()
    if not root.is_dir():
        return found
    by_model_id: dict[str, str] = {}
    for experiment in sorted(p for p in root.iterdir() if p.is_dir() and (p / "meta.yaml").is_file()):
        for run in sorted(p for p in experiment.iterdir() if p.is_dir() and p.name != "models"):
            if not (run / "meta.yaml").is_file():
                continue
            found.params.update(_values(run / "params"))
            found.metrics.update(_metrics(run / "metrics"))
            found.tags.update({k: v for k, v in _values(run / "tags").items() if not k.startswith("mlflow.")})
            for mlmodel in sorted((run / "artifacts").rglob("MLmodel")):  # MLflow 2: models under the run
                name = mlmodel.parent.relative_to(run / "artifacts").as_posix()
                if _inside(mlmodel.parent, root):
                    found.models[name] = mlmodel.parent.resolve()
        for model in sorted((experiment / "models").glob("*/meta.yaml")):  # MLflow 3: logged models
            meta = _meta(model)
            folder = _inside(model.parent / "artifacts", root)
            if folder is not None:
                name = str(meta.get("name") or model.parent.name)
                found.models[name] = folder
                by_model_id[str(meta.get("model_id") or model.parent.name)] = name
    for version in sorted((root / "models").glob("*/version-*/meta.yaml"), key=_version_order):
        meta = _meta(version)
        logged = _registered_source(meta, root, found, by_model_id)
        if logged is not None and meta.get("name"):
            found.registered.append((str(meta["name"]), logged))
    return found


def _version_order(path: Path) -> tuple[str, int]:
    m = re.fullmatch(r"version-(\d+)", path.parent.name)
    return path.parent.parent.name, int(m.group(1)) if m else 0


def _registered_source(meta: dict[str, Any], root: Path, found: Tracked, by_model_id: dict[str, str]) -> str | None:
    """Which logged model a registered version is (by model ID, storage location or runs:/ source)."""
    model_id = meta.get("model_id")
    if model_id and str(model_id) in by_model_id:
        return by_model_id[str(model_id)]
    for key in ("storage_location", "source"):
        where = _location(str(meta.get(key) or ""), root)
        if where is not None:
            for name, folder in found.models.items():
                if folder == where:
                    return name
    source = str(meta.get("source") or "")
    if source.startswith("runs:/"):
        path = source.split("/", 2)[2] if source.count("/") >= 2 else ""
        return path if path in found.models else None
    return None
