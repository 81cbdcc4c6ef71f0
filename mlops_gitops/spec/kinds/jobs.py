"""Components and jobs: command component, pipeline component, command job, pipeline job."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema

from mlops_gitops.spec.kinds.common import (
    Asset,
    DataOutput,
    EnvValue,
    Identity,
    InlineEnvironment,
    JobInput,
    JobOutput,
    Resource,
    Resources,
    Strict,
    Tags,
)


def _local_path(value: Any) -> Any:
    """`code: {local_path: src}`, the CLI's early form, is the folder `src`."""
    if isinstance(value, dict) and set(value) == {"local_path"} and isinstance(value["local_path"], str):
        return value["local_path"]
    return value


CodePath = Annotated[str, BeforeValidator(_local_path), WithJsonSchema({"type": "string"})]

PortType = Literal[
    "number",
    "integer",
    "boolean",
    "string",
    "uri_file",
    "uri_folder",
    "mltable",
    "mlflow_model",
    "custom_model",
    "triton_model",
]


class ComponentInput(Strict):
    type: PortType
    description: str | None = None
    default: str | bool | int | float | None = None
    optional: bool = False
    min: int | float | None = None
    max: int | float | None = None
    enum: list[str | int | float] | None = None
    mode: str | None = None


class ComponentOutput(Strict):
    type: PortType
    description: str | None = None
    mode: str | None = None


class Distribution(Strict):
    type: Literal["mpi", "pytorch", "tensorflow", "ray"]
    process_count_per_instance: int | None = None
    worker_count: int | None = None
    parameter_server_count: int | None = None
    head_address: str | None = None
    port: int | None = None


class Limits(Strict):
    timeout: int | None = Field(None, ge=1)


class CommandComponent(Asset):
    type: Literal["command"] = "command"
    display_name: str | None = None
    is_deterministic: bool = True
    command: str
    code: CodePath | None = None
    environment: str | InlineEnvironment
    distribution: Distribution | None = None
    resources: Resources | None = None
    inputs: dict[str, ComponentInput] = Field(default_factory=dict)
    outputs: dict[str, ComponentOutput] = Field(default_factory=dict)
    additional_includes: list[str] | None = None


# Step types Azure runs and the local workspace does not: validated for what the fields shared with
# command steps say, their own fields kept as written, and reported as one warning each.
NOT_RUN_STEPS = ("sweep", "parallel", "spark", "automl", "data_transfer", "import")


def _foreign_fields_schema(schema: dict[str, Any]) -> None:
    """In the published schema: a step of those types may carry fields of its own; others may not."""
    schema.pop("additionalProperties", None)
    schema["if"] = {"properties": {"type": {"enum": list(NOT_RUN_STEPS)}}, "required": ["type"]}
    schema["else"] = {"propertyNames": {"enum": [k for k in schema.get("properties", {}) if k != "foreign"]}}


class PipelineStep(Strict):
    """One entry of a pipeline's `jobs`: a component reference or an inline command."""

    model_config = ConfigDict(json_schema_extra=_foreign_fields_schema)

    type: Literal["command", "pipeline", "sweep", "parallel", "spark", "automl", "data_transfer", "import"] = \
        "command"
    # the fields of a step type that is not run locally (spark's entry and conf, automl's task, ...)
    foreign: SkipJsonSchema[dict[str, Any] | None] = None

    @model_validator(mode="before")
    @classmethod
    def _keep_foreign_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or str(data.get("type", "")).lower() not in NOT_RUN_STEPS:
            return data
        own = {k: v for k, v in data.items() if k in cls.model_fields and k != "foreign"}
        rest = {k: v for k, v in data.items() if k not in own}
        return {**own, "foreign": rest} if rest else own
    component: str | dict[str, Any] | None = None
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: Tags | None = None
    command: str | None = None
    code: CodePath | None = None
    environment: str | InlineEnvironment | None = None
    environment_variables: dict[str, EnvValue] | None = None
    compute: str | None = None
    resources: Resources | None = None
    limits: Limits | None = None
    distribution: Distribution | None = None
    inputs: dict[str, JobInput] = Field(default_factory=dict)
    outputs: dict[str, JobOutput] = Field(default_factory=dict)
    settings: dict[str, Any] | None = None


class PipelineSettings(Strict):
    default_datastore: str | None = None
    default_compute: str | None = None
    continue_on_step_failure: bool | None = None
    force_rerun: bool | None = None
    default_environment: str | None = None


class PipelineComponent(Asset):
    type: Literal["pipeline"]
    display_name: str | None = None
    inputs: dict[str, ComponentInput] = Field(default_factory=dict)
    outputs: dict[str, ComponentOutput] = Field(default_factory=dict)
    jobs: dict[str, PipelineStep]


class QueueSettings(Strict):
    job_tier: Literal["spot", "basic", "standard", "premium", "null"] | None = None
    priority: Literal["low", "medium", "high"] | None = None


def _snake(value: Any) -> Any:
    """JobCompleted (the REST API's spelling) and job_completed (the YAML's) are the same."""
    if isinstance(value, list):
        return [re.sub(r"(?<!^)(?=[A-Z])", "_", v).lower() if isinstance(v, str) else v for v in value]
    return value


class NotificationSetting(Strict):
    """Mails when the job ends (sent through mlops.yaml's smtp server)."""

    email_on: Annotated[list[Literal["job_completed", "job_failed", "job_cancelled"]] | None,
                        BeforeValidator(_snake)] = None
    emails: list[str] | None = None
    webhooks: dict[str, Any] | None = None


class JobBase(Resource):
    name: str | None = None
    display_name: str | None = None
    experiment_name: str | None = None
    description: str | None = None
    tags: Tags | None = None
    properties: Tags | None = None
    identity: Identity | None = None
    notification_setting: NotificationSetting | None = None


class CommandJob(JobBase):
    type: Literal["command"] = "command"
    command: str
    code: CodePath | None = None
    environment: str | InlineEnvironment
    environment_variables: dict[str, EnvValue] | None = None
    distribution: Distribution | None = None
    compute: str | None = None
    resources: Resources | None = None
    limits: Limits | None = None
    inputs: dict[str, JobInput] = Field(default_factory=dict)
    outputs: dict[str, JobOutput] = Field(default_factory=dict)
    queue_settings: QueueSettings | None = None
    services: dict[str, dict[str, Any]] | None = None


class PipelineJob(JobBase):
    type: Literal["pipeline"]
    compute: str | None = None
    inputs: dict[str, JobInput] = Field(default_factory=dict)
    outputs: dict[str, DataOutput | None] = Field(default_factory=dict)
    settings: PipelineSettings | None = None
    jobs: dict[str, PipelineStep] = Field(default_factory=dict)
    # instead of `jobs`: run a pipeline component (a file or azureml:NAME:VERSION) with these inputs
    component: str | None = None

    @model_validator(mode="after")
    def _jobs_or_component(self) -> PipelineJob:
        if not self.jobs and self.component is None:
            raise ValueError("a pipeline job needs `jobs` or `component` (a pipeline component to run)")
        if self.jobs and self.component is not None:
            raise ValueError("a pipeline job has either `jobs` or `component`, not both")
        return self
