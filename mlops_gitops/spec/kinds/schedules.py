"""Schedules: a trigger plus either a job to create or a monitor to run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mlops_gitops.spec.kinds.common import DataInput, Resource, Strict, Tags

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class RecurrencePattern(Strict):
    hours: int | list[int] | None = None
    minutes: int | list[int] | None = None
    week_days: Weekday | list[Weekday] | None = None
    month_days: int | list[int] | None = None


class Trigger(Strict):
    type: Literal["recurrence", "cron"]
    frequency: Literal["minute", "hour", "day", "week", "month"] | None = None
    interval: int | None = Field(None, ge=1)
    expression: str | None = None
    schedule: RecurrencePattern | None = None
    pattern: RecurrencePattern | None = None
    start_time: str | None = None
    end_time: str | None = None
    time_zone: str | None = None
    timezone: str | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> Trigger:
        if self.type == "cron":
            if not self.expression:
                raise ValueError("a cron trigger needs 'expression'")
            if len(self.expression.split()) != 5:
                raise ValueError(f"cron expression '{self.expression}' must have five fields")
        elif self.frequency is None or self.interval is None:
            raise ValueError("a recurrence trigger needs 'frequency' and 'interval'")
        return self


class MonitorCompute(Strict):
    instance_type: str
    runtime_version: str | None = None


class MonitoringTarget(Strict):
    endpoint_deployment_id: str | None = None
    model_id: str | None = None
    ml_task: Literal["classification", "regression", "question_answering"] | None = None


class MetricThreshold(Strict):
    applicable_feature_type: Literal["numerical", "categorical"] | None = None
    metric_name: str
    threshold: float | None = None


class MonitorDataset(Strict):
    input_data: DataInput | None = None
    input_dataset: DataInput | None = None
    data_context: str | None = None
    dataset_context: str | None = None
    pre_processing_component: str | None = None
    data_window_size: str | int | None = None
    data_window: dict[str, Any] | None = None
    target_column_name: str | None = None
    dataset: dict[str, Any] | None = None


class MonitoringSignal(Strict):
    type: Literal[
        "data_drift",
        "prediction_drift",
        "data_quality",
        "feature_attribution_drift",
        "model_performance",
        "custom",
    ]
    production_data: MonitorDataset | list[MonitorDataset] | None = None
    reference_data: MonitorDataset | None = None
    target_dataset: MonitorDataset | None = None
    baseline_dataset: MonitorDataset | None = None
    features: list[str] | dict[str, Any] | str | None = None
    feature_type_override: dict[str, str] | None = None
    data_segment: dict[str, Any] | None = None
    alert_enabled: bool | None = None
    alert_notification: bool | None = None
    metric_thresholds: list[MetricThreshold] | dict[str, Any] | None = None
    component_id: str | None = None


class AlertNotification(Strict):
    emails: list[str] | None = None


class MonitorDefinition(Strict):
    compute: MonitorCompute | None = None
    monitoring_target: MonitoringTarget | None = None
    monitoring_signals: dict[str, MonitoringSignal] = Field(default_factory=dict)
    alert_notification: AlertNotification | None = None


class Schedule(Resource):
    name: str
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: Tags | None = None
    properties: Tags | None = None
    is_enabled: bool = True
    trigger: Trigger
    create_job: str | dict[str, Any] | None = None
    create_monitor: MonitorDefinition | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Schedule:
        if (self.create_job is None) == (self.create_monitor is None):
            raise ValueError("a schedule needs exactly one of 'create_job' or 'create_monitor'")
        return self
