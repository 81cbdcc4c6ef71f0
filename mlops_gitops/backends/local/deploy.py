"""Turn recorded online endpoints, deployments and traffic into what the endpoint host serves."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.environments import EnvResolver, EnvSource, under
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.serving import ServingController, materialise
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import ensure_dir, safe_join
from mlops_gitops.runtime.containers import ContainerError, Engine
from mlops_gitops.runtime.envs import EnvironmentError_
from mlops_gitops.runtime.mlflow_models import SCORING_SCRIPT, find_mlmodel, model_environment
from mlops_gitops.runtime.packaging import DEFAULT_BASE_IMAGE, ImageRecipe, build_image
from mlops_gitops.runtime.serving.collector import KNOWN, rates_of
from mlops_gitops.runtime.serving.collector import available as collector_available
from mlops_gitops.runtime.serving.config import DeploymentConfig, EndpointConfig, local_workers
from mlops_gitops.state import ActualResource, DesiredResource

# Deployment settings that describe Azure compute: accepted, recorded, and not acted on locally.
AZURE_ONLY = ("instance_type", "app_insights_enabled", "scale_settings", "egress_public_network_access",
              "liveness_probe", "readiness_probe", "resources")


def azure_layout(path: object, files: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A model's files as Azure lays them out under AZUREML_MODEL_DIR: a model registered from a folder keeps
    the folder's name (`path: ../model-1/model/` -> model/sklearn_regression_model.pkl), a file sits at the top."""
    name = str(path or "").rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", "..") or (len(files) == 1 and files[0][0] == name):
        return files
    return [(f"{name}/{rel}", digest) for rel, digest in files]


def _custom_image(envs: EnvResolver, spec: dict[str, Any], refs: dict[str, str]) -> bool:
    """Whether a deployment without code_configuration names a serving image of its own (inference_config)."""
    env = spec.get("environment")
    if isinstance(env, dict):
        return bool(env.get("inference_config"))
    ref = refs.get("environment")
    if ref is None:
        return False
    name, _, version = ref.partition(":")
    found = envs.lookup(Address(Kind.ENVIRONMENT, name, version))
    return found is not None and bool(found[0].get("inference_config"))


class Deployer:
    def __init__(self, store: LocalStore, hooks: Hooks, controller: ServingController, runtime: str = "process",
                 base_image: str | None = None) -> None:
        self.store = store
        self.hooks = hooks
        self.controller = controller
        self.runtime = runtime  # process | container
        self.base_image = base_image  # replaces environments' own images (runtime: container, package)
        self.ws = store.path
        self.envs = EnvResolver(store, hooks)

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
            row = self.store.get(Address(Kind.ONLINE_ENDPOINT, name))
            if row is None:
                raise WorkspaceError(f"online endpoint '{name}' does not exist in the workspace")
            endpoint_spec = row.spec
        if traffic_spec is None:
            row = self.store.get(Address(Kind.TRAFFIC, name))
            traffic_spec = row.spec if row is not None else {}
        auth_mode = str(endpoint_spec.get("auth_mode", "key"))
        keys = list(self.store.endpoint_keys(name))  # every mode: aml_token/aad_token are served with keys
        return EndpointConfig(name, auth_mode, keys, dict(traffic_spec.get("traffic") or {}),
                              dict(traffic_spec.get("mirror_traffic") or {}))

    def deployment_config(self, desired: DesiredResource | ActualResource) -> DeploymentConfig:
        """What the host needs to serve a deployment: files laid out, environment or image built."""
        cfg, env = self.layout(desired)
        if env is not None and env.inference_config:  # a serving image of its own: run as it is
            return self._custom(desired, cfg, env)
        if self.runtime == "container":
            cfg.image = self.image(cfg, env)
        elif cfg.scoring_script:
            cfg.python = self.envs.python(env)
        return cfg

    def layout(self, res: DesiredResource | ActualResource,
               azure_only: tuple[str, ...] = AZURE_ONLY) -> tuple[DeploymentConfig, EnvSource | None]:
        """The deployment's files laid out; `azure_only`: its settings said not to apply here."""
        spec, refs = res.spec, res.derived.get("refs") or {}
        files = list(res.artifacts if isinstance(res, DesiredResource) else res.files)
        endpoint, _, name = res.address.name.partition("/")
        here = safe_join(self.ws / "deployments", endpoint, name, res.spec_hash[:16])
        model_name = model_version = model_dir = None
        model_type = ""
        if "model" in refs:
            model_name, _, model_version = refs["model"].partition(":")
            model = self.store.get(Address(Kind.MODEL, model_name, model_version))
            if model is None:
                raise WorkspaceError(f"model {refs['model']} is not registered in the workspace")
            model_type = str(model.spec.get("type", "custom_model"))
            model_dir = materialise(azure_layout(model.spec.get("path"), [(f.rel, f.sha256) for f in model.files]),
                                    self.store.artifact_path, safe_join(self.ws / "model-dirs", model_name,
                                                                        model_version))
        elif isinstance(spec.get("model"), dict):
            model_type = str(spec["model"].get("type", "custom_model"))
            model_dir = materialise(azure_layout(spec["model"].get("path"), under(files, "model.path/")),
                                    self.store.artifact_path, here / "model")
        cc = spec.get("code_configuration") or {}
        custom = not cc and spec.get("environment") is not None and _custom_image(self.envs, spec, refs)
        if custom:  # its readiness probe is the one the host waits on
            azure_only = tuple(k for k in azure_only if k != "readiness_probe")
        code_dir = None
        env = None
        env_vars = {str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()}
        if cc:
            code_dir = str(materialise(under(files, "code_configuration.code/"), self.store.artifact_path,
                                       here / "code"))
            env = self.envs.source(spec.get("environment"), refs.get("environment"), files, "environment.", here)
        elif custom:
            env = self.envs.source(spec.get("environment"), refs.get("environment"), files, "environment.", here)
        elif model_dir is not None and model_type == "mlflow_model":
            cc, code_dir, env = self._mlflow(res, Path(model_dir), here, env_vars)
        ignored = [key for key in azure_only if spec.get(key) not in (None, False)]
        if ignored:
            verbs = "describes Azure compute and does" if len(ignored) == 1 else "describe Azure compute and do"
            self.hooks.warn(f"{res.address}: {' and '.join(ignored)} {verbs} not apply to the local workspace")
        rs = spec.get("request_settings") or {}
        instances = int(spec.get("instance_count", 1))
        if cc.get("scoring_script") and local_workers(instances) < instances:
            self.hooks.warn(f"{res.address}: instance_count {instances} is more than this machine runs: it gets "
                              f"{local_workers(instances)} worker processes locally (MLOPS_GITOPS_MAX_WORKERS "
                              "raises the bound); its concurrency limit is unchanged")
        collect, rolling_rate = self._collections(res, scripted=bool(cc.get("scoring_script")))
        cfg = DeploymentConfig(
            collect=collect, rolling_rate=rolling_rate,
            endpoint=endpoint, name=name, model_name=model_name, model_version=model_version,
            model_dir=str(model_dir) if model_dir else None, code_dir=code_dir,
            scoring_script=cc.get("scoring_script"),
            environment_variables=env_vars,
            instance_count=instances,
            max_concurrent_requests_per_instance=int(rs.get("max_concurrent_requests_per_instance", 1)),
            request_timeout_ms=int(rs.get("request_timeout_ms", 5000)), spec_hash=res.spec_hash,
            model_format=model_type)
        return cfg, env

    def _collections(self, res: DesiredResource | ActualResource,
                     scripted: bool) -> tuple[dict[str, float], str]:
        """What its data_collector collects locally (runtime/serving/collector.py), said when something is not."""
        rates, rolling_rate = rates_of(res.spec.get("data_collector"))
        custom = sorted(set(rates) - set(KNOWN))
        if custom and not scripted:
            self.hooks.warn(f"{res.address}: data_collector collection(s) {', '.join(custom)} are logged by a scoring "
                            "script's Collector (azureml.ai.monitoring); this deployment has no scoring script, "
                            "so these stay empty")
            rates = {k: v for k, v in rates.items() if k in KNOWN}
        if rates and not collector_available():  # served all the same; only the collection waits for pyarrow
            self.hooks.warn(f"{res.address}: data_collector is not collected: its Parquet files need pyarrow "
                            "(pip install 'mlops-gitops[monitoring]', then apply again)")
            return {}, rolling_rate
        return rates, rolling_rate

    def _custom(self, res: DesiredResource | ActualResource, cfg: DeploymentConfig,
                env: EnvSource) -> DeploymentConfig:
        if self.runtime != "container":
            raise WorkspaceError(f"{res.address}: its environment is a serving image with an inference_config (a "
                                 "custom container), which runs only under `runtime: container` in mlops.yaml")
        if not env.image:
            raise WorkspaceError(f"{res.address}: a custom container's environment needs an image")
        cfg.image, cfg.inference_config = env.image, dict(env.inference_config or {})
        if cfg.model_dir:  # as Azure mounts it
            cfg.model_mount = f"/var/azureml-app/azureml-models/{cfg.model_name or 'model'}/{cfg.model_version or '1'}"
        probe = res.spec.get("readiness_probe") or {}
        cfg.ready_timeout_s = float(probe.get("initial_delay", 10) + probe.get("period", 10)
                                    * probe.get("failure_threshold", 30))
        return cfg

    def _mlflow(self, res: DesiredResource | ActualResource, model_dir: Path, here: Path,
                env_vars: dict[str, str]) -> tuple[dict[str, Any], str, EnvSource]:
        """An MLflow model without a scoring script: served by mlflow.pyfunc in the model's own environment."""
        folder = find_mlmodel(model_dir)
        if folder is None:
            raise WorkspaceError(f"{res.address}: its model is an mlflow_model without an MLmodel file, and the "
                                 "deployment has no code_configuration to serve it otherwise")
        code = ensure_dir(here / "mlflow-scoring")
        shutil.copyfile(SCORING_SCRIPT, code / SCORING_SCRIPT.name)
        # relative to AZUREML_MODEL_DIR, which is elsewhere inside an image (runtime: container, package)
        env_vars["MLOPS_GITOPS_MLFLOW_MODEL"] = folder.relative_to(model_dir).as_posix()
        try:
            resolved = model_environment(folder)
        except EnvironmentError_ as exc:
            raise WorkspaceError(f"{res.address}: the MLflow model's environment: {exc}") from None
        env = EnvSource(f"the MLflow model's environment ({folder.name})", resolved=resolved)
        return {"scoring_script": SCORING_SCRIPT.name}, str(code), env

    def recipe(self, cfg: DeploymentConfig, env: EnvSource | None) -> ImageRecipe:
        recipe = ImageRecipe(cfg, base_image=self.base_image or DEFAULT_BASE_IMAGE)
        if env is None:
            return recipe
        recipe.env_label = env.label
        if self.base_image is None and env.context is not None:
            recipe.env_context = env.context
        elif self.base_image is None and env.image:
            recipe.base_image = env.image
        elif env.image or env.context:
            self.hooks.warn(f"{env.label}: its {'image' if env.image else 'build context'} is replaced by the "
                              f"configured base image {self.base_image}")
        if env.resolved is not None and recipe.env_context is None:
            recipe.script_python, recipe.env_requirements = "env", env.resolved.requirements
            if env.resolved.skipped:
                self.hooks.warn(f"{env.label}: conda packages with no PyPI equivalent are not installed in the image: "
                                  f"{', '.join(env.resolved.skipped)}")
        else:  # the environment's own image (or context) provides the packages, unless it was replaced
            recipe.script_python = "image" if self.base_image is None else "server"
        return recipe

    def image(self, cfg: DeploymentConfig, env: EnvSource | None, tag: str | None = None) -> str:
        try:
            engine = Engine.connect()
            return build_image(engine, self.recipe(cfg, env), tag, log=self.hooks.note)
        except ContainerError as exc:
            raise WorkspaceError(str(exc)) from None

