"""The contract between the use cases (plan, apply, commands) and a workspace implementation.

`Backend` is what every backend provides: read actual state, take the lock, write one resource at a time
(each write atomic and journaled), keep the change log and the events. Capabilities that not every
backend has are separate protocols a backend may offer: `runs` (pipeline and command jobs), `serving`
(online endpoints it serves), `packager` (deployments as images); each is None when it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlops_gitops.addresses import Address
from mlops_gitops.redact import Masker
from mlops_gitops.runtime.pipelines.runner import RunResult
from mlops_gitops.runtime.serving.config import DeploymentConfig
from mlops_gitops.state import (
    ActualResource,
    ChangeRecord,
    DesiredResource,
    EventRecord,
    LockInfo,
    RunRecord,
    Snapshot,
    StepRecord,
)

if TYPE_CHECKING:  # the image builder (jinja2) is imported only where images are built
    from mlops_gitops.runtime.packaging import ImageRecipe

# A pipeline job's steps as a run would treat them now: [{step, action: run|reuse, reason}], or a reason
# why the pipeline cannot be previewed (it then plans to run, and the run reports the problem).
StepPreview = list[dict[str, str]] | str


class Runs(Protocol):
    """Runs of pipeline and command jobs: their records, logs and cancellation, and running them."""

    def all(self, pipeline: str | None = None) -> list[RunRecord]: ...

    def get(self, run_id: str) -> RunRecord: ...

    def steps(self, run_id: str) -> list[StepRecord]: ...

    def step_log(self, run_id: str, step: str) -> str | None: ...

    def cancel(self, run_id: str) -> list[str]: ...

    def metrics_at(self, commit: str, pipeline: str | None = None) -> tuple[dict[str, Any], list[str]]: ...

    def preview(self, job: DesiredResource, pending: dict[Address, DesiredResource]) -> StepPreview | None:
        """Which steps a run would run or reuse now; None where applying a job only records it."""
        ...

    def run(self, job: DesiredResource, pending: dict[Address, DesiredResource], snapshot: dict[str, Any],
            force_rerun: bool = False, parallelism: int = 4,
            log: Callable[[str], None] | None = None) -> tuple[str, RunResult]: ...


@dataclass(frozen=True)
class HostInfo:
    """An endpoint host that serves the workspace."""

    url: str
    pid: int | None = None


@dataclass
class Served:
    """What one endpoint host serves now: each deployment's spec hash (by endpoint/name), each endpoint's routes."""

    deployments: dict[str, str]
    routes: dict[str, dict[str, int]]  # endpoint -> deployment -> weight (live and mirrored traffic)


class ServingTarget(Protocol):
    """This machine's endpoint host as the workspace's controller drives it (`serve --follow`)."""

    def start(self) -> HostInfo:
        """Start the host when it is not running (it restarts from what it served); the host."""
        ...

    def stop(self) -> int | None: ...

    def served(self) -> Served: ...

    def load(self, deployment: ActualResource) -> None:
        """Load (or reload) a deployment; raise WorkspaceError when it does not become ready."""
        ...

    def route(self, endpoint: ActualResource, traffic_spec: dict[str, Any]) -> bool:
        """Serve the endpoint (auth, keys) with this traffic; True when anything changed."""
        ...

    def unload(self, endpoint: str, name: str) -> None: ...

    def drop(self, endpoint: str) -> None: ...


class Serving(Protocol):
    """Online endpoints as the backend serves them: the host, requests, keys and logs."""

    def host(self) -> HostInfo | None:
        """The running host, or None."""
        ...

    def start(self) -> HostInfo: ...

    def stop(self) -> int | None:
        """Stop the host; its pid, or None when none ran."""
        ...

    def ensure_serving(self) -> HostInfo | None:
        """Start the host when endpoints should be served and none runs; the host when it was started now."""
        ...

    def served_endpoints(self) -> list[str]: ...

    def status(self) -> dict[str, Any] | None:
        """What the host reports of its deployments ({"deployments": {endpoint/name: {...}}}), None if stopped."""
        ...

    def score(self, endpoint: str, body: bytes, deployment: str | None = None) -> tuple[int, str | None, str]:
        """Send a request as a client would: status, the deployment that answered, the body."""
        ...

    def endpoint_keys(self, endpoint: str) -> tuple[str, str]: ...

    def regenerate_key(self, endpoint: str, which: str) -> tuple[str, str]: ...

    def metrics_credentials(self) -> dict[str, str]: ...

    def logs(self, endpoint: str, deployment: str | None, lines: int) -> list[tuple[str, list[str]]]:
        """The last lines of the endpoint's logs, per log (name, lines)."""
        ...

    @property
    def by_hosts(self) -> bool:
        """True when hosts that follow the workspace serve it (serving: hosts), not the apply itself."""
        ...

    def target(self) -> ServingTarget:
        """This machine's host, for the controller to converge."""
        ...

    def report_host(self, host_id: str, url: str, pid: int, serial: int, status: dict[str, Any]) -> None:
        """A following host's heartbeat: the state serial it converged to, what it serves, what failed."""
        ...

    def forget_host(self, host_id: str) -> None: ...

    def figures(self) -> dict[str, dict[str, Any]]:
        """What the hosts measured per deployment (endpoint/name), summed, cumulative: requests, errors (5xx),
        latency bucket counts; as they recorded them in the workspace."""
        ...

    def hosts(self) -> list[dict[str, Any]]:
        """The hosts that follow the workspace, as they last reported."""
        ...


class Packager(Protocol):
    def recipe(self, deployment: ActualResource, base_image: str | None) -> tuple[DeploymentConfig, ImageRecipe]:
        """A deployment of the workspace as an image recipe: its files laid out, no engine needed."""
        ...


class Backend(Protocol):
    """Read actual state; write one resource at a time, each write atomic and journaled."""

    name: str  # the kind of backend: local, azureml, ...

    @property
    def location(self) -> str:
        """Where its state is, for messages (a folder, a URL with its password masked)."""
        ...

    @property
    def runs(self) -> Runs | None: ...

    @property
    def serving(self) -> Serving | None: ...

    @property
    def packager(self) -> Packager | None: ...

    # actual state
    def has_state(self) -> bool: ...

    def ensure(self) -> None: ...

    def read(self) -> Snapshot: ...

    def serial(self) -> int:
        """The state serial alone, bumped by every change: cheap to poll."""
        ...

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
