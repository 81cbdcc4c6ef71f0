"""Shared field types for the Azure ML CLI v2 kinds."""

from __future__ import annotations

import itertools
import re
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mlops_gitops.imageref import PATTERN, check_image_reference


def _version(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a version is a string or an integer, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"version {value!r} was read as a number; quote it, e.g. version: \"{value}\"")
    return value


def _text(value: Any) -> Any:
    # Tag and property values are strings in Azure ML; YAML gives us numbers and booleans too.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Version = Annotated[str, BeforeValidator(_version), WithJsonSchema({"type": ["string", "integer"]})]
Text = Annotated[str, BeforeValidator(_text), WithJsonSchema({"type": ["string", "number", "boolean"]})]
Tags = dict[str, Text]
# A container image reference: it ends up in a Dockerfile's FROM line and in engine calls.
ImageRef = Annotated[str, AfterValidator(check_image_reference),
                     WithJsonSchema({"type": "string", "pattern": PATTERN})]


# environment_variables take any scalar, as Azure's do, and are passed to processes as strings
EnvValue = str | bool | int | float


def _literal_options(annotation: Any) -> dict[str, str]:
    """The string values of the Literals in an annotation (through unions and Optional), by lower case."""
    if get_origin(annotation) is Literal:
        return {v.lower(): v for v in get_args(annotation) if isinstance(v, str)}
    out: dict[str, str] = {}
    if get_origin(annotation) in (Union, UnionType):
        for arg in get_args(annotation):
            out |= _literal_options(arg)
    return out


class Strict(BaseModel):
    """Unknown keys are reported (warning by default, error with --strict)."""

    # defer_build: a kind's validator is built on first use, so start-up pays only for kinds in the tree
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _enum_case(cls, data: Any) -> Any:
        """Enum values match ignoring case, as Azure's SDK reads them (`auth_mode: Key`)."""
        if not isinstance(data, dict):
            return data
        table = _ENUMS.get(cls)
        if table is None:
            table = _ENUMS[cls] = {f.alias or name: opts for name, f in cls.model_fields.items()
                                   if (opts := _literal_options(f.annotation))}
        fixed = None
        for key, options in table.items():
            value = data.get(key)
            if isinstance(value, str) and value not in options.values() and value.lower() in options:
                fixed = fixed if fixed is not None else dict(data)
                fixed[key] = options[value.lower()]
        return data if fixed is None else fixed


_ENUMS: dict[type[Strict], dict[str, dict[str, str]]] = {}


class ConversionSample(Strict):
    data: str | None = Field(None, description="A data asset (azureml:NAME:VERSION or azureml:NAME@latest) whose "
                                               "rows the parity check scores; default: the training data of the "
                                               "source model's run.")
    rows: int = Field(200, ge=1, le=100_000, description="Rows drawn (seeded) from the sample.")
    drop_columns: list[str] = Field(default_factory=list, description="Columns that are not features (the label).")


class ConversionTolerance(Strict):
    max_abs_diff: float = Field(1e-4, ge=0, description="Largest absolute difference of outputs (probabilities, "
                                                        "or predictions of a regressor) allowed.")
    min_label_agreement: float = Field(1.0, ge=0, le=1, description="Share of equal labels required.")


class Conversion(Strict):
    """`x-gitops.convert`: this model version is the ONNX conversion of another model version. Unlike the other
    `x-gitops` keys it is part of the version's content: a new source version or a changed tolerance makes a
    new converted version."""

    from_: str = Field(alias="from", description="The source model: azureml:NAME:VERSION (or azureml:NAME@latest).")
    to: Literal["onnx"] = "onnx"
    converter: Literal["auto", "skl2onnx", "onnxmltools"] = Field(
        "auto", description="auto: skl2onnx for scikit-learn estimators and pipelines, onnxmltools for LightGBM "
                            "and XGBoost.")
    target_opset: int | None = Field(None, ge=7, description="ONNX opset of the converted model (default: the "
                                                             "converter's).")
    requirements: list[str] = Field(default_factory=list, description="Packages the conversion environment needs "
                                                                      "besides the converters (the source model's "
                                                                      "libraries, pinned as it was trained).")
    sample: ConversionSample = Field(default_factory=ConversionSample)
    tolerance: ConversionTolerance = Field(default_factory=ConversionTolerance)


CONDITION = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_condition(text: str) -> tuple[str, str, float]:
    """A release gate's condition, 'METRIC OP NUMBER', as (metric, op, number)."""
    found = CONDITION.match(text)
    if found is None:
        raise ValueError(f"condition {text!r}: write METRIC OP NUMBER, e.g. 'val_accuracy >= 0.9' "
                         "(OP: >=, >, <=, <, ==)")
    return found.group(1), found.group(2), float(found.group(3))


class ReleaseGate(Strict):
    """`x-gitops.gate`: what a model version must show before a deployment serves it (on a deployment; on a model
    file, for every deployment of that model). Checked at apply, once the version exists."""

    metrics: list[str] = Field(default_factory=list, description="Conditions on the producing run's metrics, "
                                                                  "'NAME OP NUMBER' with OP one of >=, >, <=, <, "
                                                                  "== (conversion.* for a conversion's report).")
    not_worse_than: Literal["current"] | None = Field(
        None, description="current: each metric of `metrics` must be no worse than that of the version in service "
                          "(the deployment's, or its endpoint's busiest deployment's), in the direction its "
                          "condition gives, within `tolerance`.")
    tolerance: float = Field(0.0, ge=0, description="How much worse than the version in service a metric may be.")
    parity: bool = Field(True, description="Where the version is an ONNX conversion, its parity check must have "
                                           "passed.")

    @field_validator("metrics")
    @classmethod
    def _conditions(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_condition(text)
        return value


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def seconds_of(value: float | str) -> float:
    """A duration: a number of seconds, or '500ms', '30s', '2m', '1h'."""
    if isinstance(value, (int, float)):
        return float(value)
    found = DURATION.match(value)
    if found is None:
        raise ValueError(f"duration {value!r}: write seconds (30) or 500ms, 30s, 2m, 1h")
    return float(found.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[found.group(2) or "s"]


# what an endpoint host records per deployment over a rollout's pause (the names rollout conditions may use)
HOST_FIGURES = ("requests", "errors", "error_rate", "p50_latency_ms", "p90_latency_ms", "p95_latency_ms",
                "p99_latency_ms", "mean_latency_ms")


def host_figure(name: str) -> bool:
    return name in HOST_FIGURES or (name.endswith("_over_old") and name[:-len("_over_old")] in HOST_FIGURES)


class RolloutHealth(Strict):
    max_error_rate: float | None = Field(None, ge=0, le=1, description="Largest share of 5xx answers of the "
                                                                       "deployment gaining traffic in a pause.")
    max_p99_latency_ms: float | None = Field(None, gt=0, description="Largest p99 latency of its answers in a "
                                                                      "pause (from the host's latency buckets).")
    max_error_rate_over_old: float | None = Field(
        None, ge=0, le=1, description="How much its error rate may exceed that of the deployments losing "
                                      "traffic, measured over the same pause.")
    min_requests: int = Field(0, ge=0, description="Requests it must answer in a pause for the step to count; "
                                                   "with fewer, the rollout stops and the split is restored.")
    metrics: list[str] = Field(default_factory=list, description=(
        "More conditions, 'FIGURE OP NUMBER', on any figure the host records per deployment over a pause: "
        f"{', '.join(HOST_FIGURES)}; FIGURE_over_old is its excess over the deployments losing traffic."))

    @field_validator("metrics")
    @classmethod
    def _conditions(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_condition(text)
        return value


class Rollout(Strict):
    """`x-gitops.rollout` on an online endpoint: a traffic change moves in steps, each held for `pause` while
    the endpoint host measures the deployment gaining traffic; a breach restores the previous split."""

    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        description="Shares (percent) of the deployment gaining traffic, rising, ending at its declared share.")
    pause: float | str = Field("30s", description="How long each step holds: seconds, or 500ms, 30s, 2m.")
    health: RolloutHealth = Field(default_factory=RolloutHealth)

    @field_validator("steps")
    @classmethod
    def _rising(cls, value: list[int]) -> list[int]:
        if not value or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("rollout steps must rise (e.g. [10, 50, 100])")
        return value

    @field_validator("pause")
    @classmethod
    def _pause(cls, value: float | str) -> float | str:
        seconds_of(value)
        return value


class Explanation(Strict):
    """`x-gitops.explain` on a model: each version it registers gets its global feature importance (permutation
    importance on an evaluation data asset, computed in the model's environment), stored with the version."""

    data: str = Field(description="The evaluation data asset (CSV files): azureml:NAME:VERSION or azureml:NAME@latest "
                                  "— best held out from training.")
    label: str = Field(description="The column holding the true label (or target value).")
    drop_columns: list[str] = Field(default_factory=list, description="Columns that are not features.")
    rows: int = Field(500, ge=10, le=100_000, description="Rows sampled (seeded) from the evaluation data.")
    repeats: int = Field(5, ge=1, le=100, description="Shuffles per feature; importance is their mean drop.")
    scoring: str | None = Field(None, description="A scikit-learn scorer name (default: accuracy for "
                                                  "classifiers, r2 otherwise).")
    requirements: list[str] = Field(default_factory=list, description="Packages the model needs besides "
                                                                      "scikit-learn, numpy and onnxruntime.")
    notable: float = Field(0.02, ge=0, description="A change in a feature's importance against the version in "
                                                   "service larger than this is shown in the pull request.")


class GitOpsExtension(Strict):
    """Our extensions live under one key, `x-gitops`, never as new top-level fields."""

    protect: bool = Field(False, description="Refuse to delete or archive this resource, even with --prune.")
    description: str | None = None
    convert: Conversion | None = Field(None, description="Models only: this version is the ONNX conversion of "
                                                         "another model version, checked for parity at apply.")
    gate: ReleaseGate | None = Field(None, description="Deployments and models: the release gate a model version "
                                                       "passes before a deployment serves it.")
    rollout: Rollout | None = Field(None, description="Online endpoints: traffic changes move in steps, checked "
                                                      "by the host's figures, rolled back on a breach.")
    explain: Explanation | None = Field(None, description="Models only: each version's permutation feature "
                                                          "importance on an evaluation data asset.")


class Resource(Strict):
    schema_: str | None = Field(None, alias="$schema")
    x_gitops: GitOpsExtension | None = Field(None, alias="x-gitops")
    converts: ClassVar[bool] = False  # models only: x-gitops.convert

    @model_validator(mode="after")
    def _conversion_is_for_models(self) -> Resource:
        if self.x_gitops is not None and self.x_gitops.convert is not None and not self.converts:
            raise ValueError("x-gitops.convert is for models only (a model version converted to ONNX)")
        if self.x_gitops is not None and self.x_gitops.explain is not None and not self.converts:
            raise ValueError("x-gitops.explain is for models only (a model version's feature importance)")
        return self


class Asset(Resource):
    name: str
    version: Version | None = None
    description: str | None = None
    tags: Tags | None = None
    properties: Tags | None = None


class Route(Strict):
    path: str
    port: int = Field(ge=1, le=65535)


class InferenceConfig(Strict):
    liveness_route: Route | None = None
    readiness_route: Route | None = None
    scoring_route: Route | None = None


class BuildContext(Strict):
    path: str
    dockerfile_path: str = "Dockerfile"


class InlineEnvironment(Strict):
    """An anonymous environment written inside a job or deployment."""

    image: ImageRef | None = None
    build: BuildContext | None = None
    conda_file: str | dict[str, Any] | None = None
    os_type: Literal["linux", "windows"] = "linux"
    inference_config: InferenceConfig | None = None
    description: str | None = None
    tags: Tags | None = None


class InlineModel(Strict):
    path: str
    type: Literal["custom_model", "mlflow_model", "triton_model"] = "custom_model"
    name: str | None = None
    version: Version | None = None
    description: str | None = None
    flavors: dict[str, Any] | None = None


class CodeConfiguration(Strict):
    code: str
    scoring_script: str


class Identity(Strict):
    type: Literal["system_assigned", "user_assigned", "user_identity", "managed", "aml_token"]
    user_assigned_identities: list[dict[str, str]] | None = None
    client_id: str | None = None
    resource_id: str | None = None
    object_id: str | None = None


IoType = Literal[
    "uri_file",
    "uri_folder",
    "mltable",
    "mlflow_model",
    "custom_model",
    "triton_model",
    "string",
    "number",
    "integer",
    "boolean",
]
DataMode = Literal["ro_mount", "rw_mount", "download", "upload", "direct", "eval_mount", "eval_download"]
Scalar = str | bool | int | float


class DataInput(Strict):
    type: IoType = "uri_folder"
    path: str | None = None
    mode: DataMode | None = None
    default: Scalar | None = None
    optional: bool | None = None
    description: str | None = None


class DataOutput(Strict):
    type: IoType = "uri_folder"
    mode: DataMode | None = None
    path: str | None = None
    name: str | None = None
    version: Version | None = None
    description: str | None = None


# A job or step input is a literal, a binding expression, or a data spec.
JobInput = DataInput | Scalar
# A job or step output is empty, a binding expression, or a data spec.
JobOutput = DataOutput | str | None


class Resources(Strict):
    instance_count: int | None = Field(None, ge=1)
    instance_type: str | None = None
    shm_size: str | None = None
    docker_args: str | None = None
    locations: list[str] | None = None
    max_instance_count: int | None = Field(None, ge=1)
    properties: dict[str, Any] | None = None
