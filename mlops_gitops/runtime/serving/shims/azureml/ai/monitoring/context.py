"""The correlation context `Collector.collect` returns (Azure's `azureml.ai.monitoring.context`)."""

from __future__ import annotations

import uuid


class BasicCorrelationContext:
    """Links the rows of several collections that belong to one request: pass it to the next collect()."""

    def __init__(self, id: str | None = None) -> None:
        self.id = id or str(uuid.uuid4())
        self.draw: float | None = None  # the sampling draw its collections share

    def get_id(self) -> str:
        return self.id
