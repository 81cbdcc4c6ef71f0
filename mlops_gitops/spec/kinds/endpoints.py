"""Online and batch endpoints and their deployments."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mlops_gitops.spec.kinds.common import (
    CodeConfiguration,
    EnvValue,
    Identity,
    InlineEnvironment,
    InlineModel,
    Resource,
    Resources,
    Strict,
    Tags,
)


class OnlineEndpoint(Resource):
    name: str
    description: str | None = None
    tags: Tags | None = None
    auth_mode: Literal["key", "aml_token", "aad_token"] = "key"
    identity: Identity | None = None
    traffic: dict[str, int] | None = None
    mirror_traffic: dict[str, int] | None = None
    properties: dict[str, Any] | None = None


class ManagedOnlineEndpoint(OnlineEndpoint):
    public_network_access: Literal["enabled", "disabled"] = "enabled"


class KubernetesOnlineEndpoint(OnlineEndpoint):
    compute: str | None = None


class RequestSettings(Strict):
    request_timeout_ms: int = Field(5000, ge=1, le=180000)
    max_concurrent_requests_per_instance: int = Field(1, ge=1)
    max_queue_wait_ms: int | None = Field(None, ge=0)


class Probe(Strict):
    initial_delay: int = Field(10, ge=0)
    period: int = Field(10, ge=1)
    timeout: int = Field(2, ge=1)
    success_threshold: int = Field(1, ge=1)
    failure_threshold: int = Field(30, ge=1)


class ScaleSettings(Strict):
    type: Literal["default", "target_utilization"] = "default"
    min_instances: int | None = Field(None, ge=0)
    max_instances: int | None = Field(None, ge=1)
    target_utilization_percentage: int | None = Field(None, ge=1, le=100)
    polling_interval: int | None = Field(None, ge=1)


class DataCollection(Strict):
    enabled: bool | str = True
    data: dict[str, Any] | None = None
    sampling_rate: float | None = Field(None, ge=0, le=1)
    client_id: str | None = None


class DataCollector(Strict):
    collections: dict[str, DataCollection] = Field(default_factory=dict)
    sampling_rate: float | None = Field(None, ge=0, le=1)
    rolling_rate: Literal["minute", "hour", "day", "month", "year"] | None = None
    request_logging: dict[str, Any] | None = None


class ContainerResources(Strict):
    requests: dict[str, str | int | float] | None = None
    limits: dict[str, str | int | float] | None = None


class OnlineDeployment(Resource):
    name: str
    endpoint_name: str
    description: str | None = None
    tags: Tags | None = None
    properties: dict[str, Any] | None = None
    model: str | InlineModel | None = None
    model_mount_path: str | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | InlineEnvironment | None = None
    environment_variables: dict[str, EnvValue] | None = None
    instance_count: int = Field(1, ge=1)
    app_insights_enabled: bool = False
    scale_settings: ScaleSettings | None = None
    request_settings: RequestSettings | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    data_collector: DataCollector | None = None
    egress_public_network_access: Literal["enabled", "disabled"] | None = None


class ManagedOnlineDeployment(OnlineDeployment):
    type: Literal["managed"] = "managed"
    instance_type: str


class KubernetesOnlineDeployment(OnlineDeployment):
    type: Literal["kubernetes"] = "kubernetes"
    instance_type: str | None = None
    resources: ContainerResources | None = None


class BatchDefaults(Strict):
    deployment_name: str | None = None


class BatchEndpoint(Resource):
    name: str
    description: str | None = None
    tags: Tags | None = None
    auth_mode: Literal["aad_token"] = "aad_token"
    defaults: BatchDefaults | None = None
    properties: dict[str, Any] | None = None


class RetrySettings(Strict):
    max_retries: int = Field(3, ge=0)
    timeout: int = Field(30, ge=1)


class ModelBatchSettings(Strict):
    max_concurrency_per_instance: int = Field(1, ge=1)
    error_threshold: int = Field(-1, ge=-1)
    logging_level: Literal["warning", "info", "debug"] = "info"
    mini_batch_size: int = Field(10, ge=1)
    retry_settings: RetrySettings | None = None
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str = "predictions.csv"
    environment_variables: dict[str, EnvValue] | None = None


class BatchDeploymentBase(Resource):
    name: str
    endpoint_name: str
    description: str | None = None
    tags: Tags | None = None
    properties: dict[str, Any] | None = None
    compute: str | None = None
    resources: Resources | None = None


class ModelBatchDeployment(BatchDeploymentBase):
    type: Literal["model"] = "model"
    model: str | InlineModel
    code_configuration: CodeConfiguration | None = None
    environment: str | InlineEnvironment | None = None
    settings: ModelBatchSettings | None = None


class PipelineBatchSettings(Strict):
    default_compute: str | None = None
    default_datastore: str | None = None
    continue_on_step_failure: bool | None = None
    force_rerun: bool | None = None


class PipelineComponentBatchDeployment(BatchDeploymentBase):
    type: Literal["pipeline"] = "pipeline"
    component: str | dict[str, Any] | None = None
    job_definition: str | dict[str, Any] | None = None
    settings: PipelineBatchSettings | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PipelineComponentBatchDeployment:
        if (self.component is None) == (self.job_definition is None):
            raise ValueError("a pipeline batch deployment needs exactly one of 'component' or 'job_definition'")
        return self


class BatchDeployment(BatchDeploymentBase):
    """The generic (legacy) batch deployment: settings may sit at the root."""

    type: Literal["model", "pipeline"] | None = None
    model: str | InlineModel | None = None
    component: str | dict[str, Any] | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | InlineEnvironment | None = None
    settings: ModelBatchSettings | None = None
    max_concurrency_per_instance: int | None = Field(None, ge=1)
    error_threshold: int | None = Field(None, ge=-1)
    logging_level: Literal["warning", "info", "debug"] | None = None
    mini_batch_size: int | None = Field(None, ge=1)
    retry_settings: RetrySettings | None = None
    output_action: Literal["append_row", "summary_only"] | None = None
    output_file_name: str | None = None
    environment_variables: dict[str, EnvValue] | None = None

    @model_validator(mode="after")
    def _has_source(self) -> BatchDeployment:
        if self.model is None and self.component is None:
            raise ValueError("a batch deployment needs a 'model' (or a 'component' with type: pipeline)")
        return self
