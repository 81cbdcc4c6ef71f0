"""The contract between the use cases (plan, apply, commands) and a workspace implementation.

`Backend` is what every backend provides: read actual state, take the lock, write one resource at a time
(each write atomic and journaled), keep the change log and the events. Capabilities that not every
backend has — runs of pipeline jobs, serving endpoints — are separate protocols a backend may offer
(`Backend.runs`, `Backend.serving` are None when it does not).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops_gitops.addresses import Address
from mlops_gitops.redact import Masker
from mlops_gitops.runtime.pipelines.runner import RunResult
from mlops_gitops.state import ActualResource, ChangeRecord, DesiredResource, LockInfo, Snapshot


@dataclass(frozen=True)
class RunRecord:
    id: str
    pipeline: str
    status: str  # running | completed | failed | cancelled | interrupted
    started_at: str
    finished_at: str | None
    submitted_by: str
    source_file: str | None
    apply_id: str | None
    snapshot: dict[str, Any] = field(default_factory=dict)  # git commit, diff, parameters, code digests
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    owner: str = ""  # host:pid:start of the process that runs it


@dataclass(frozen=True)
class StepRecord:
    run_id: str
    step: str
    status: str
    key: str = ""
    component: str = ""
    exit_code: int | None = None
    pid: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    reused_from: str = ""
    log: str = ""  # where its log is kept
    message: str = ""


@dataclass(frozen=True)
class EventRecord:
    seq: int
    at: str
    type: str
    subject: str
    document: str  # the CloudEvent as delivered (JSON)


class Runs(Protocol):
    """Runs of pipeline and command jobs: their records, logs and cancellation."""

    def all(self, pipeline: str | None = None) -> list[RunRecord]: ...

    def get(self, run_id: str) -> RunRecord: ...

    def steps(self, run_id: str) -> list[StepRecord]: ...

    def step_log(self, run_id: str, step: str) -> str | None: ...

    def cancel(self, run_id: str) -> list[str]: ...

    def metrics_at(self, commit: str, pipeline: str | None = None) -> tuple[dict[str, Any], list[str]]: ...

    def run(self, job: DesiredResource, pending: dict[Address, DesiredResource], snapshot: dict[str, Any],
            force_rerun: bool = False, parallelism: int = 4,
            log: Callable[[str], None] | None = None) -> tuple[str, RunResult]: ...


class Backend(Protocol):
    """Read actual state; write one resource at a time, each write atomic and journaled."""

    name: str

    # actual state
    def has_state(self) -> bool: ...

    def ensure(self) -> None: ...

    def read(self) -> Snapshot: ...

    def get(self, address: Address) -> ActualResource | None: ...

    def change_log(self, address: Address | None = None, source_file: str | None = None) -> list[ChangeRecord]: ...

    def search_tags(self, key: str, value: str | None) -> list[Address]: ...

    def masker(self) -> Masker: ...

    def export_files(self, resource: ActualResource, dest: Path) -> Path: ...

    # the lock, the journal, applies
    def lock(self, operation: str, reason: str = "", timeout: float = 0.0) -> AbstractContextManager[LockInfo]: ...

    def lock_holder(self) -> LockInfo | None: ...

    def force_unlock(self, lock_id: str) -> LockInfo: ...

    def begin_apply(self, apply_id: str, who: str, source: dict[str, Any]) -> None: ...

    def finish_apply(self, apply_id: str, status: str, summary: dict[str, Any]) -> None: ...

    def journal(self, apply_id: str, address: Address, action: str, phase: str, detail: str = "") -> None: ...

    def interrupted(self) -> list[dict[str, Any]]: ...

    def mark_abandoned(self, apply_id: str) -> None: ...

    # writing
    def put(self, desired: DesiredResource, action: str, provenance: dict[str, Any], apply_id: str | None,
            origin: str = "apply", journal_begin: bool = False) -> ActualResource: ...

    def set_status(self, address: Address, status: str, provenance: dict[str, Any], apply_id: str | None,
                   origin: str) -> None: ...

    def set_spec(self, address: Address, spec: dict[str, Any], spec_hash: str, provenance: dict[str, Any]) -> None: ...

    def delete(self, address: Address, provenance: dict[str, Any], apply_id: str | None, origin: str) -> None: ...

    def collect_garbage(self) -> int: ...

    # events
    def emit(self, type_: str, subject: str, data: dict[str, Any]) -> Any: ...

    def events(self, after: int = 0, limit: int | None = None) -> list[EventRecord]: ...

    def close(self) -> None: ...
