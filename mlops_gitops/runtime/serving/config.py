"""What the host serves, as plain data: written by the local backend, read by the host."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops.fsutil import write_private


def local_workers(instance_count: int) -> int:
    """Worker processes a scoring-script deployment gets on this machine: its instance_count, but never more
    than two per core (MLOPS_GITOPS_MAX_WORKERS overrides): 150 instances are 150 VMs in Azure, not 150
    processes on a laptop. The concurrency limit stays instance_count x max_concurrent_requests_per_instance;
    requests beyond the workers wait for one."""
    ceiling = int(os.environ.get("MLOPS_GITOPS_MAX_WORKERS") or 2 * (os.cpu_count() or 1))
    return max(1, min(instance_count, ceiling))


@dataclass
class DeploymentConfig:
    endpoint: str
    name: str
    model_name: str | None
    model_version: str | None
    model_dir: str | None  # the model version's files, materialised on disk
    code_dir: str | None = None
    scoring_script: str | None = None
    python: str | None = None  # interpreter of the deployment's environment (scoring scripts)
    environment_variables: dict[str, str] = field(default_factory=dict)
    instance_count: int = 1
    max_concurrent_requests_per_instance: int = 1
    request_timeout_ms: int = 5000
    max_body_bytes: int = 4 * 1024 * 1024
    spec_hash: str = ""  # changes whenever the deployment must be reloaded
    image: str | None = None  # runtime: container — the deployment's image, run beside the host
    model_format: str = ""  # the model's type: triton_model is served as a model repository
    # a custom container (its environment's image with an inference_config): its routes, as Azure reads them
    inference_config: dict[str, Any] | None = None
    model_mount: str | None = None  # where the model is mounted in it (AZUREML_MODEL_DIR)
    ready_timeout_s: float = 310.0  # readiness_probe: initial_delay + period x failure_threshold
    # data_collector: collection -> sampling rate (runtime/serving/collector.py), and its rolling_rate
    collect: dict[str, float] = field(default_factory=dict)
    rolling_rate: str = "hour"

    @property
    def key(self) -> str:
        return f"{self.endpoint}/{self.name}"

    @property
    def max_concurrency(self) -> int:
        return self.instance_count * self.max_concurrent_requests_per_instance


@dataclass
class EndpointConfig:
    name: str
    auth_mode: str = "key"
    keys: list[str] = field(default_factory=list)  # primary, secondary
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)


@dataclass
class ServingConfig:
    endpoints: dict[str, EndpointConfig] = field(default_factory=dict)
    deployments: dict[str, DeploymentConfig] = field(default_factory=dict)  # key: endpoint/name
    metrics_key: str | None = None  # Bearer key of GET /metrics (the workspace's; none: see HostApp)

    def to_json(self) -> str:
        # rewritten on every change an apply makes: shallow field dicts (their values are plain JSON already)
        # and the C encoder (no indent), not asdict's deep copies and the pure-Python indenting encoder
        return json.dumps({"endpoints": {k: vars(v) for k, v in self.endpoints.items()},
                           "deployments": {k: vars(v) for k, v in self.deployments.items()},
                           "metrics_key": self.metrics_key}, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServingConfig:
        return cls(
            endpoints={k: EndpointConfig(**v) for k, v in (data.get("endpoints") or {}).items()},
            deployments={k: DeploymentConfig(**v) for k, v in (data.get("deployments") or {}).items()},
            metrics_key=data.get("metrics_key") or None,
        )

    @classmethod
    def load(cls, path: Path) -> ServingConfig:
        if not path.exists():
            return cls()
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        write_private(path, self.to_json())  # it holds the endpoints' keys: 0600, replaced atomically
