"""Triton model repositories (`type: triton_model`): each ONNX model of the repository in onnxruntime.

A repository is a folder of models, `<name>/config.pbtxt` beside version folders `<name>/<version>/model.onnx`
(the file `default_model_filename` names, if it names one); as Triton's default version policy does, the
highest version is served. The host serves these under Triton's own routes (`/v2/models/<name>/infer`,
`/ready`, `/config`, metadata) for an endpoint chosen by its own port or its host name (app.py), so
Triton's clients work unchanged. A model of another platform (TensorRT, PyTorch, Python) is listed as
unavailable with the reason; it is never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_gitops.runtime.serving.errors import HttpError
from mlops_gitops.runtime.serving.onnx_runner import OnnxRunner

ONNX_PLATFORMS = ("onnxruntime_onnx", "onnxruntime")


def _field(config: str, key: str) -> str | None:
    m = re.search(rf'^\s*{key}\s*:\s*"([^"]*)"', config, re.M)
    return m.group(1) if m else None


@dataclass
class RepositoryModel:
    name: str
    version: str | None
    runner: OnnxRunner | None
    reason: str = ""  # why it is not served

    @property
    def ready(self) -> bool:
        return self.runner is not None


def find_root(model_dir: Path) -> Path:
    """The repository: the model folder itself, or the one folder Azure's layout puts it in."""
    if any(model_dir.glob("*/config.pbtxt")):
        return model_dir
    inner = [p for p in model_dir.iterdir() if p.is_dir() and any(p.glob("*/config.pbtxt"))]
    if len(inner) == 1:
        return inner[0]
    raise ValueError(f"a triton_model needs a model repository: folders <name>/config.pbtxt with version folders "
                     f"(found none under {model_dir.name})")


def _load(folder: Path) -> RepositoryModel:
    config = (folder / "config.pbtxt").read_text(encoding="utf-8", errors="replace")
    platform = _field(config, "platform") or _field(config, "backend") or ""
    versions = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if platform not in ONNX_PLATFORMS:
        return RepositoryModel(folder.name, versions[-1].name if versions else None, None,
                               f"platform {platform or '(none)'} is not ONNX: only ONNX models run locally "
                               "(onnxruntime)")
    filename = _field(config, "default_model_filename") or "model.onnx"
    for version in reversed(versions):
        if (version / filename).is_file():
            try:
                return RepositoryModel(folder.name, version.name, OnnxRunner(version))
            except Exception as exc:  # onnxruntime refuses the file: the model is unavailable, with why
                return RepositoryModel(folder.name, version.name, None, f"onnxruntime cannot load it: {exc}")
    return RepositoryModel(folder.name, None, None, f"no version folder holds {filename}")


class TritonRepository:
    kind = "triton"

    def __init__(self, model_dir: Path) -> None:
        self.root = find_root(model_dir)
        self.models = {m.name: m for m in (_load(p.parent) for p in sorted(self.root.glob("*/config.pbtxt")))}

    def model(self, name: str) -> RepositoryModel:
        found = self.models.get(name)
        if found is None:
            raise HttpError(404, f"unknown model '{name}' (this repository has {', '.join(self.models) or 'none'})")
        if not found.ready:
            raise HttpError(400, f"model '{name}' is not available: {found.reason}")
        return found

    def index(self) -> list[dict[str, Any]]:
        return [{"name": m.name, "version": m.version or "", "state": "READY" if m.ready else "UNAVAILABLE",
                 **({"reason": m.reason} if m.reason else {})} for m in self.models.values()]

    def metadata(self) -> dict[str, Any]:
        return {"platform": "triton_model_repository", "models": self.index()}
