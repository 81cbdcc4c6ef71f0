"""Turn recorded online endpoints, deployments and traffic into what the endpoint host serves."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.serving import ServingController, materialise
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.runtime.envs import EnvironmentError_, ensure_env, resolve_conda, resolve_requirements
from mlops_gitops.runtime.serving.config import DeploymentConfig, EndpointConfig
from mlops_gitops.state import ArtifactFile, DesiredResource

if TYPE_CHECKING:
    from mlops_gitops.backends.local.backend import LocalBackend

# Deployment settings that describe Azure compute: accepted, recorded, and not acted on locally.
AZURE_ONLY = ("instance_type", "app_insights_enabled", "scale_settings", "egress_public_network_access",
              "liveness_probe", "readiness_probe", "resources")


def _under(files: list[ArtifactFile] | tuple[ArtifactFile, ...], prefix: str) -> list[tuple[str, str]]:
    return [(f.rel[len(prefix):], f.sha256) for f in files if f.rel.startswith(prefix)]


class Deployer:
    def __init__(self, backend: LocalBackend, controller: ServingController) -> None:
        self.backend = backend
        self.controller = controller
        self.ws = backend.path

    # -- hooks called by the backend before it records a change -------------------------------------

    def before_put(self, desired: DesiredResource) -> None:
        kind = desired.address.kind
        if kind is Kind.ONLINE_DEPLOYMENT:
            self.controller.put_deployment(self.deployment_config(desired))
        elif kind is Kind.ONLINE_ENDPOINT:
            self.controller.put_endpoint(self.endpoint_config(desired.address.name, endpoint_spec=desired.spec))
        elif kind is Kind.TRAFFIC:
            self.controller.put_endpoint(self.endpoint_config(desired.address.name, traffic_spec=desired.spec))

    def before_delete(self, address: Address) -> None:
        if address.kind is Kind.ONLINE_DEPLOYMENT:
            endpoint, _, name = address.name.partition("/")
            self.controller.delete_deployment(endpoint, name)
        elif address.kind is Kind.ONLINE_ENDPOINT:
            self.controller.delete_endpoint(address.name)
        elif address.kind is Kind.TRAFFIC:
            self.controller.put_endpoint(self.endpoint_config(address.name, traffic_spec={}))

    # -- translation -----------------------------------------------------------------------------

    def endpoint_config(self, name: str, endpoint_spec: dict[str, Any] | None = None,
                        traffic_spec: dict[str, Any] | None = None) -> EndpointConfig:
        if endpoint_spec is None:
            row = self.backend.get(Address(Kind.ONLINE_ENDPOINT, name))
            if row is None:
                raise WorkspaceError(f"online endpoint '{name}' does not exist in the workspace")
            endpoint_spec = row.spec
        if traffic_spec is None:
            row = self.backend.get(Address(Kind.TRAFFIC, name))
            traffic_spec = row.spec if row is not None else {}
        auth_mode = str(endpoint_spec.get("auth_mode", "key"))
        keys = list(self.backend.endpoint_keys(name)) if auth_mode == "key" else []
        return EndpointConfig(name, auth_mode, keys, dict(traffic_spec.get("traffic") or {}),
                              dict(traffic_spec.get("mirror_traffic") or {}))

    def deployment_config(self, desired: DesiredResource) -> DeploymentConfig:
        spec, refs = desired.spec, desired.derived.get("refs") or {}
        endpoint, _, name = desired.address.name.partition("/")
        here = self.ws / "deployments" / endpoint / name / desired.spec_hash[:16]
        model_name = model_version = model_dir = None
        if "model" in refs:
            model_name, _, model_version = refs["model"].partition(":")
            model = self.backend.get(Address(Kind.MODEL, model_name, model_version))
            if model is None:
                raise WorkspaceError(f"model {refs['model']} is not registered in the workspace")
            model_dir = materialise([(f.rel, f.sha256) for f in model.files], self.backend.artifact_path,
                                    self.ws / "models" / model_name / model_version)
        elif isinstance(spec.get("model"), dict):
            model_dir = materialise(_under(desired.artifacts, "model.path/"), self.backend.artifact_path,
                                    here / "model")
        cc = spec.get("code_configuration") or {}
        code_dir = python = None
        if cc:
            code_dir = str(materialise(_under(desired.artifacts, "code_configuration.code/"),
                                       self.backend.artifact_path, here / "code"))
            python = self.environment_python(spec.get("environment"), refs.get("environment"), desired)
        ignored = [key for key in AZURE_ONLY if spec.get(key) not in (None, False)]
        if ignored:
            self.backend.warn(f"{desired.address}: {', '.join(ignored)} describe Azure compute and do not apply "
                              "to the local workspace")
        rs = spec.get("request_settings") or {}
        return DeploymentConfig(
            endpoint=endpoint, name=name, model_name=model_name, model_version=model_version,
            model_dir=str(model_dir) if model_dir else None, code_dir=code_dir,
            scoring_script=cc.get("scoring_script"), python=python,
            environment_variables={str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()},
            instance_count=int(spec.get("instance_count", 1)),
            max_concurrent_requests_per_instance=int(rs.get("max_concurrent_requests_per_instance", 1)),
            request_timeout_ms=int(rs.get("request_timeout_ms", 5000)), spec_hash=desired.spec_hash)

    def environment_python(self, env: Any, ref: str | None, desired: DesiredResource) -> str:
        if ref is not None:
            env_name, _, env_version = ref.partition(":")
            row = self.backend.get(Address(Kind.ENVIRONMENT, env_name, env_version))
            if row is None:
                raise WorkspaceError(f"environment {ref} is not registered in the workspace")
            spec, files, prefix, label = row.spec, list(row.files), "", f"environment {ref}"
        elif isinstance(env, dict):
            spec, files, prefix, label = env, list(desired.artifacts), "environment.", "the inline environment"
        else:
            return sys.executable  # no environment named: the scoring script runs with the host's Python
        conda = spec.get("conda_file")
        try:
            if isinstance(conda, dict):
                resolved = resolve_conda(conda)
            elif isinstance(conda, str):
                found = _under(files, f"{prefix}conda_file/")
                if not found:
                    raise WorkspaceError(f"{label}: its conda file was not stored")
                resolved = resolve_conda(_yaml(self.backend.artifact_path(found[0][1]).read_text()))
            elif spec.get("build"):
                context = dict(_under(files, f"{prefix}build.path/"))
                if "requirements.txt" in context:
                    text = self.backend.artifact_path(context["requirements.txt"]).read_text()
                    resolved = resolve_requirements(text)
                else:
                    raise WorkspaceError(f"{label} is built from a Docker context; the process runtime needs a "
                                         "requirements.txt in it (or use runtime: container)")
            else:
                raise WorkspaceError(f"{label} names only an image; the process runtime needs a conda_file "
                                     "(or use runtime: container)")
            return str(ensure_env(self.ws / "envs", resolved, log=self.backend.warn))
        except EnvironmentError_ as exc:
            raise WorkspaceError(f"{label}: {exc}") from None


def _yaml(text: str) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(text)
    if not isinstance(data, dict):
        raise WorkspaceError("the environment's conda file is not a mapping")
    return data
