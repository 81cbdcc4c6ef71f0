"""Actual and desired state as pure data, shared by plan, apply and backends."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.redact import Masker


@dataclass(frozen=True)
class ArtifactFile:
    rel: str  # path inside the asset (posix)
    sha256: str
    size: int
    source: Path | None = None  # where to read it from when uploading


# Outputs of the latest completed run of each pipeline job: job -> (run ID, output -> files).
JobOutputs = dict[str, tuple[str, dict[str, tuple[ArtifactFile, ...]]]]


def run_output_files(job_outputs: JobOutputs, job: str,
                     output: str, subpath: str = "") -> tuple[str | None, list[ArtifactFile]]:
    """The run and the files of `azureml://jobs/<job>/outputs/<output>/paths/<subpath>` as last produced."""
    found = job_outputs.get(job)
    if found is None or output not in found[1]:
        return None, []
    run_id, outputs = found
    files = list(outputs[output])
    if subpath:
        exact = [f for f in files if f.rel == subpath]  # the path names one file
        if exact:
            return run_id, [ArtifactFile(subpath.rsplit("/", 1)[-1], f.sha256, f.size) for f in exact]
        prefix = subpath.rstrip("/") + "/"
        files = [ArtifactFile(f.rel[len(prefix):], f.sha256, f.size) for f in files if f.rel.startswith(prefix)]
    return (run_id, files) if files else (None, [])


@dataclass
class DesiredResource:
    """A resource as the tree wants it, with concrete version and content hashes."""

    address: Address
    spec: dict[str, Any]  # normalized user spec (no $schema, no unknown fields)
    derived: dict[str, Any]  # computed: content hashes of local paths, resolved references
    content_hash: str  # immutable content (versioned assets); whole spec otherwise
    spec_hash: str  # everything, mutable fields included
    source_file: str
    source_line: int = 1
    schema_name: str = ""
    auto_version: bool = False
    artifacts: list[ArtifactFile] = field(default_factory=list)
    depends_on: set[Address] = field(default_factory=set)
    # references written as @latest (or a bare name): derived key -> the asset's name. Not hashed: the
    # pinned version in derived["refs"] is what the resource is.
    floating: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActualResource:
    address: Address
    spec: dict[str, Any]
    derived: dict[str, Any]
    content_hash: str
    spec_hash: str
    applied_spec: dict[str, Any] | None  # the spec as last applied from Git; None if made outside it
    applied_hash: str | None
    status: str  # active | archived
    managed: bool
    source_file: str | None
    created_at: str
    updated_at: str
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_name: str = ""
    files: tuple[ArtifactFile, ...] = ()

    @property
    def drifted(self) -> bool:
        return self.applied_hash is not None and self.applied_hash != self.spec_hash

    @property
    def protected(self) -> bool:
        ext = self.spec.get("x-gitops") or {}
        return bool(ext.get("protect"))


@dataclass
class Snapshot:
    workspace_id: str | None  # None: the workspace has never been written
    serial: int
    resources: dict[Address, ActualResource] = field(default_factory=dict)
    counters: dict[tuple[Kind, str], int] = field(default_factory=dict)
    job_outputs: JobOutputs = field(default_factory=dict)
    # The workspace's secret: keys the masks of secret values shown in plans (never shown itself)
    secret: bytes | None = field(default=None, repr=False, compare=False)
    _masker: Masker | None = field(default=None, repr=False, compare=False)
    _by_name: dict[tuple[Kind, str], list[ActualResource]] | None = field(default=None, repr=False, compare=False)
    _indexed: int = field(default=-1, repr=False, compare=False)

    def masker(self) -> Masker:
        """Masks keyed by the workspace (equal values, equal masks; a guess cannot be confirmed without it)."""
        if self._masker is None:
            self._masker = Masker(hmac.new(self.secret, b"mask", hashlib.sha256).digest() if self.secret else None)
        return self._masker

    def plan_key(self) -> bytes | None:
        """The key that signs this workspace's saved plans; None before the workspace has a secret."""
        return hmac.new(self.secret, b"plan", hashlib.sha256).digest() if self.secret else None

    def versions(self, kind: Kind, name: str) -> list[ActualResource]:
        # Indexed on first use: plan asks once per versioned asset in the tree.
        if self._by_name is None or self._indexed != len(self.resources):
            index: dict[tuple[Kind, str], list[ActualResource]] = {}
            for addr, res in self.resources.items():
                index.setdefault((addr.kind, addr.name), []).append(res)
            self._by_name, self._indexed = index, len(self.resources)
        return sorted(self._by_name.get((kind, name), []), key=lambda r: r.address.sort_key())

    def latest(self, kind: Kind, name: str, include_archived: bool = False) -> ActualResource | None:
        """Most recently created version (Azure's meaning of @latest)."""
        found = [r for r in self.versions(kind, name) if include_archived or r.status == "active"]
        return max(found, key=lambda r: (r.created_at, r.address.sort_key()), default=None)

    def index(self) -> dict[tuple[Kind, str], tuple[str, ...]]:
        """(kind, name) -> existing versions, for reference checks."""
        out: dict[tuple[Kind, str], list[str]] = {}
        for addr in self.resources:
            out.setdefault((addr.kind, addr.name), [])
            if addr.version is not None:
                out[(addr.kind, addr.name)].append(addr.version)
        return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True)
class LockInfo:
    id: str
    operation: str
    who: str
    host: str
    pid: int
    created: str
    reason: str = ""

    def describe(self) -> str:
        text = f"ID {self.id}, {self.operation} by {self.who} (pid {self.pid} on {self.host}) since {self.created}"
        return text + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class ChangeRecord:
    """One row of the workspace change log (audit trail)."""

    id: int
    apply_id: str | None
    at: str
    address: Address
    action: str
    origin: str  # apply | cli
    before_hash: str | None
    after_hash: str | None
    source_file: str | None
    provenance: dict[str, Any]


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
