"""Which `$schema` names we recognise, and the kind and model each one maps to."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_gitops.addresses import Kind
from mlops_gitops.spec.kinds.assets import Data, Environment, Model
from mlops_gitops.spec.kinds.common import Resource
from mlops_gitops.spec.kinds.endpoints import (
    BatchDeployment,
    BatchEndpoint,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
    PipelineComponentBatchDeployment,
)
from mlops_gitops.spec.kinds.jobs import CommandComponent, CommandJob, PipelineComponent, PipelineJob
from mlops_gitops.spec.kinds.schedules import Schedule


@dataclass(frozen=True)
class KindInfo:
    schema_name: str
    kind: Kind
    model: type[Resource]
    title: str


_ENTRIES = [
    KindInfo("model", Kind.MODEL, Model, "Model"),
    KindInfo("environment", Kind.ENVIRONMENT, Environment, "Environment"),
    KindInfo("data", Kind.DATA, Data, "Data asset"),
    KindInfo("commandComponent", Kind.COMPONENT, CommandComponent, "Command component"),
    KindInfo("pipelineComponent", Kind.COMPONENT, PipelineComponent, "Pipeline component"),
    KindInfo("commandJob", Kind.JOB, CommandJob, "Command job"),
    KindInfo("pipelineJob", Kind.JOB, PipelineJob, "Pipeline job"),
    KindInfo("managedOnlineEndpoint", Kind.ONLINE_ENDPOINT, ManagedOnlineEndpoint, "Managed online endpoint"),
    KindInfo(
        "kubernetesOnlineEndpoint", Kind.ONLINE_ENDPOINT, KubernetesOnlineEndpoint, "Kubernetes online endpoint"
    ),
    KindInfo(
        "managedOnlineDeployment", Kind.ONLINE_DEPLOYMENT, ManagedOnlineDeployment, "Managed online deployment"
    ),
    KindInfo(
        "kubernetesOnlineDeployment",
        Kind.ONLINE_DEPLOYMENT,
        KubernetesOnlineDeployment,
        "Kubernetes online deployment",
    ),
    KindInfo("batchEndpoint", Kind.BATCH_ENDPOINT, BatchEndpoint, "Batch endpoint"),
    KindInfo("batchDeployment", Kind.BATCH_DEPLOYMENT, BatchDeployment, "Batch deployment"),
    KindInfo("modelBatchDeployment", Kind.BATCH_DEPLOYMENT, ModelBatchDeployment, "Model batch deployment"),
    KindInfo(
        "pipelineComponentBatchDeployment",
        Kind.BATCH_DEPLOYMENT,
        PipelineComponentBatchDeployment,
        "Pipeline component batch deployment",
    ),
    KindInfo("schedule", Kind.SCHEDULE, Schedule, "Schedule or monitor"),
]

CATALOG: dict[str, KindInfo] = {e.schema_name: e for e in _ENTRIES}
# Aliases: names Azure uses for the same shapes.
_ALIASES = {"monitorschedule": "schedule", "k8sonlineendpoint": "kubernetesOnlineEndpoint",
            "k8sonlinedeployment": "kubernetesOnlineDeployment",
            # the SDK's `http://azureml/sdk-2-0/<Kind>.json` names: online kinds without "managed"
            "onlineendpoint": "managedOnlineEndpoint", "onlinedeployment": "managedOnlineDeployment"}
_BY_LOWER = {name.lower(): info for name, info in CATALOG.items()} | {
    alias: CATALOG[target] for alias, target in _ALIASES.items()
}

# Azure kinds we know but do not manage: a warning, not an error.
NOT_MANAGED = frozenset(
    name.lower()
    for name in (
        "sweepJob", "sparkJob", "parallelJob", "automlJob", "amlCompute", "computeInstance", "vmCompute",
        "kubernetesCompute", "workspace", "azureBlob", "azureFile", "azureDataLakeGen1", "azureDataLakeGen2",
        "registry", "featureStore", "featureSet", "featureStoreEntity", "connection", "serverlessEndpoint",
        "marketplaceSubscription", "sparkComponent", "parallelComponent", "capabilityHost", "dataImport",
        "dataTransferComponent", "flowComponent", "index",
    )
)
# Job kinds the local workspace cannot run: the file is skipped with one warning that says so.
NOT_RUN = frozenset(name.lower() for name in ("sweepJob", "sparkJob", "parallelJob", "automlJob", "sparkComponent",
                                              "parallelComponent", "dataTransferComponent", "flowComponent"))


def schema_basename(url: str) -> str | None:
    """`…/latest/managedOnlineDeployment.schema.json` → `managedOnlineDeployment`; the SDK's
    `http://azureml/sdk-2-0/CommandComponent.json` → `CommandComponent` (looked up ignoring case)."""
    text = url.strip().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    base = text.rsplit("/", 1)[-1]
    if base.lower().endswith(".schema.json"):
        return base[: -len(".schema.json")]
    if "/sdk-2-0/" in text.lower() and base.lower().endswith(".json"):
        return base[: -len(".json")]
    return None


def lookup(url: str) -> KindInfo | None:
    base = schema_basename(url)
    return _BY_LOWER.get(base.lower()) if base else None


def is_not_run(url: str) -> bool:
    base = schema_basename(url)
    return base is not None and base.lower() in NOT_RUN


def is_unmanaged(url: str) -> bool:
    base = schema_basename(url)
    return base is not None and base.lower() in NOT_MANAGED


def known_schema_names() -> list[str]:
    return sorted(CATALOG)
