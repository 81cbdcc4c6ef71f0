"""One lifecycle event, as a CloudEvents 1.0 JSON document (structured mode).

Types are short dotted names (`model.registered`, `deployment.updated`, `drift.detected`) so that the
filters in mlops.yaml read naturally (`events: ["model.*"]`).
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TYPES = (
    "model.registered", "environment.built", "job.completed", "job.failed", "deployment.created",
    "deployment.updated", "deployment.failed", "traffic.changed", "apply.completed", "apply.failed",
    "drift.detected", "release.gated", "release.rolled_back", "monitor.signal_breached", "data_drift.detected",
)


@dataclass(frozen=True)
class Event:
    type: str
    source: str  # e.g. mlops-gitops://local/dev (backend/workspace)
    subject: str  # the resource address or run ID it is about
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def cloudevent(self) -> dict[str, Any]:
        return {"specversion": "1.0", "id": self.id, "source": self.source, "type": self.type,
                "subject": self.subject, "time": self.time, "datacontenttype": "application/json",
                "data": self.data}

    def to_json(self) -> str:
        return json.dumps(self.cloudevent(), sort_keys=True, separators=(",", ":"), default=str)


def matches(event_type: str, patterns: list[str]) -> bool:
    """Filters with shell wildcards: `*`, `model.*`, `deployment.failed`."""
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)
