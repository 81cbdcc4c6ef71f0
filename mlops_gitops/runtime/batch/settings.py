"""A batch deployment's settings, as Azure ML reads them, with an invocation's `--set` overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

OUTPUT_ACTIONS = ("append_row", "summary_only")
LOGGING_LEVELS = ("warning", "info", "debug")
# `--set` keys an invocation may override, as `az ml batch-endpoint invoke --set` names them
OVERRIDABLE = ("mini_batch_size", "max_concurrency_per_instance", "instance_count", "error_threshold",
               "max_retries", "timeout", "output_action", "output_file_name", "logging_level")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class BatchSettings:
    mini_batch_size: int = 10  # files per mini-batch
    max_concurrency_per_instance: int = 1
    instance_count: int = 1
    error_threshold: int = -1  # failed items allowed; -1: any number
    mini_batch_error_threshold: int = -1  # failed mini-batches allowed (parallel steps); -1: any number
    max_retries: int = 3  # per mini-batch, after its first try
    timeout: int = 30  # seconds per mini-batch try
    output_action: str = "append_row"
    output_file_name: str = "predictions.csv"
    logging_level: str = "info"
    environment_variables: tuple[tuple[str, str], ...] = ()

    @property
    def workers(self) -> int:
        """Azure's parallelism is max_concurrency_per_instance x instance_count processes."""
        return self.max_concurrency_per_instance * self.instance_count

    def local_workers(self) -> int:
        """The processes this machine gets: never more than four per core (MLOPS_GITOPS_MAX_WORKERS overrides)."""
        ceiling = int(os.environ.get("MLOPS_GITOPS_MAX_WORKERS") or 4 * (os.cpu_count() or 1))
        return max(1, min(self.workers, ceiling))

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "environment_variables"}
        return out | {"workers": self.workers}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> BatchSettings:
        """A model batch deployment's `settings:` (or, in the older form, the same keys at its root)."""
        given = {**{k: v for k, v in spec.items() if v is not None}, **(spec.get("settings") or {})}
        retry = given.get("retry_settings") or {}
        env = {**(spec.get("environment_variables") or {}), **(given.get("environment_variables") or {})}
        return cls(
            mini_batch_size=int(given.get("mini_batch_size", 10)),
            max_concurrency_per_instance=int(given.get("max_concurrency_per_instance", 1)),
            instance_count=int((spec.get("resources") or {}).get("instance_count", 1)),
            error_threshold=int(given.get("error_threshold", -1)),
            max_retries=int(retry.get("max_retries", 3)), timeout=int(retry.get("timeout", 30)),
            output_action=str(given.get("output_action", "append_row")),
            output_file_name=str(given.get("output_file_name", "predictions.csv")),
            logging_level=str(given.get("logging_level", "info")),
            environment_variables=tuple(sorted((str(k), str(v)) for k, v in env.items())))

    def overridden(self, pairs: list[str]) -> BatchSettings:
        """`--set key=value` pairs applied; an unknown key or a bad value raises SettingsError."""
        changes: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip().removeprefix("settings.").removeprefix("retry_settings.")
            if not sep or key not in OVERRIDABLE:
                raise SettingsError(f"--set {pair}: expected KEY=VALUE with KEY one of {', '.join(OVERRIDABLE)}")
            if key in ("output_action", "output_file_name", "logging_level"):
                changes[key] = value.strip()
            else:
                try:
                    changes[key] = int(value)
                except ValueError:
                    raise SettingsError(f"--set {pair}: {key} takes a whole number") from None
        return replace(self, **changes).checked()

    def checked(self) -> BatchSettings:
        if self.mini_batch_size < 1 or self.max_concurrency_per_instance < 1 or self.instance_count < 1:
            raise SettingsError("mini_batch_size, max_concurrency_per_instance and instance_count must be at least 1")
        if self.error_threshold < -1 or self.max_retries < 0 or self.timeout < 1:
            raise SettingsError("error_threshold must be -1 or more, max_retries 0 or more, timeout 1 s or more")
        if self.output_action not in OUTPUT_ACTIONS:
            raise SettingsError(f"output_action must be one of {', '.join(OUTPUT_ACTIONS)}, not {self.output_action!r}")
        if self.logging_level not in LOGGING_LEVELS:
            raise SettingsError(f"logging_level must be one of {', '.join(LOGGING_LEVELS)}")
        name = self.output_file_name
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise SettingsError(f"output_file_name must be a plain file name, not {name!r}")
        return self
