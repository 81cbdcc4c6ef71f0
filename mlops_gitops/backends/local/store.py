"""The local workspace's state: the SQL metadata store and the content-addressed files beside it.

Reads and writes only — resources, versions and counters, the change log and the journal, applies, the
lock, endpoint keys, blob records and event rows. Nothing here builds, runs, serves or fetches; the
effects (environments, pipelines, serving, DVC) take a store and act, and the backend joins them.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from mlops_gitops import versioning
from mlops_gitops.actor import now
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import db, rows
from mlops_gitops.backends.local.artifacts import ArtifactStore, open_artifacts
from mlops_gitops.backends.local.identity import check_store, read_marker, write_marker
from mlops_gitops.backends.local.locations import ARTIFACTS_VARIABLE, DATABASE_VARIABLE
from mlops_gitops.backends.local.lock import creation_lock, os_lock_for, read_holder, workspace_lock
from mlops_gitops.errors import LockHeldError, NotFoundError, WorkspaceError
from mlops_gitops.events.model import Event
from mlops_gitops.faults import failpoint
from mlops_gitops.fsutil import ensure_dir, restrict
from mlops_gitops.hashing import canonical_json
from mlops_gitops.redact import Masker
from mlops_gitops.state import (
    ActualResource,
    ArtifactFile,
    ChangeRecord,
    DesiredResource,
    JobOutputs,
    LockInfo,
    Snapshot,
)

METRICS_KEY_NAME = "-metrics"  # a row of mg_endpoint_keys no endpoint can own (names start with a letter)


@dataclass(frozen=True)
class Written:
    """What a resource write recorded, and whether it made the row."""

    resource: ActualResource
    created: bool


class LocalStore:
    def __init__(self, path: Path, database: str | None = None, artifacts: str | None = None,
                 artifacts_setting: str = "artifacts", check_artifacts: bool = True) -> None:
        self.path = path
        self._given = (database, artifacts)  # as configured, for processes that open the same store
        self.url = database or f"sqlite:///{path / 'state.db'}"
        self._artifact_args = (path, artifacts, artifacts_setting)
        self._artifacts: ArtifactStore | None = None  # opened on first use: an object store's SDK costs ~0.6 s
        # False: a read of the metadata alone (a plan), which never touches the files: their store is not checked
        self.check_artifacts = check_artifacts
        try:
            self.engine: Engine = db.make_engine(self.url)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise WorkspaceError(f"invalid database URL '{db.mask_url(self.url)}': {exc}") from None
        except ImportError as exc:
            raise WorkspaceError(
                f"database driver missing for '{db.mask_url(self.url)}': {exc.name} "
                "(for PostgreSQL: pip install 'mlops-gitops[postgres]')") from None
        self._ready = False
        self._checked = False  # the store was found to match the folder (identity.check_store)
        self.new_store = False  # this process created the store: garbage collection has nothing to judge yet
        # One write transaction at a time per process: parallel actions overlap their file copies,
        # not their metadata writes (SQLite would otherwise deadlock upgrading read locks).
        self._write = threading.Lock()

    def locations(self) -> dict[str, str]:
        """The database and artifact settings, as environment variables for a process that opens this store
        (passed in the environment, never on a command line: a URL may hold a password)."""
        database, artifacts = self._given
        return {DATABASE_VARIABLE: database or "", ARTIFACTS_VARIABLE: artifacts or ""}

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = open_artifacts(*self._artifact_args)
        return self._artifacts

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Database failures as WorkspaceError, with the URL's password masked."""
        try:
            yield
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise WorkspaceError(f"cannot use workspace database {db.mask_url(self.url)}: {reason}") from None
        except SQLAlchemyError as exc:
            raise WorkspaceError(f"workspace database {db.mask_url(self.url)}: {exc}") from None

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.guard(), self._write, self.engine.begin() as conn:
            yield conn

    def writing(self) -> AbstractContextManager[Connection]:
        """One write transaction."""
        self.ensure()
        return self._writing()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.guard(), self.engine.connect() as conn:
            yield conn

    def _workspace_id(self) -> str | None:
        """The store's workspace id; None when it has no tables (or no SQLite file: connecting would make one)."""
        if self.engine.dialect.name == "sqlite" and not (self.path / "state.db").exists():
            return None
        with self.reading() as conn:
            try:
                found = dict(conn.execute(select(db.meta.c.key, db.meta.c.value).where(
                    db.meta.c.key.in_(("workspace_id", "lineage")))).all())
                value = found.get("workspace_id") or found.get("lineage")  # "lineage": stores before the rename
            except (OperationalError, ProgrammingError):
                return None  # no tables yet: a workspace that was never written
        return str(value) if value else None

    def has_state(self) -> bool:
        """Whether the workspace's tables exist; an empty store beside stored files is refused here."""
        if self._checked:
            return True
        workspace_id = self._workspace_id()
        if self.check_artifacts:
            self.artifacts.check()
            check_store(self.artifacts, workspace_id, db.mask_url(self.url))
        self._checked = workspace_id is not None
        return self._checked

    def ensure(self) -> None:
        """Create the folder and tables on first write; give the workspace its id and secret."""
        if self._ready:
            return
        try:
            ensure_dir(self.path)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace folder {self.path}: {exc.strerror}") from None
        with self.guard(), creation_lock(self.engine, self.path) as conn:
            workspace_id = self._workspace_id()
            self.artifacts.check()  # an unreachable object store stops the first write before it starts
            check_store(self.artifacts, workspace_id, db.mask_url(self.url))  # before anything is written
            db.metadata.create_all(conn)  # also adds the tables of newer versions to an older store
            db.add_missing_columns(conn)  # and the columns newer versions added to its tables
            have = {r.key for r in conn.execute(select(db.meta.c.key))}
            if workspace_id is None:
                workspace_id = str(uuid.uuid4())
                self.new_store = True
            elif "blobs_recorded" not in have:  # a store from before mg_blobs: what it references is its own
                _record_blobs(conn, _referenced(conn))
            rows = [{"key": "workspace_id", "value": workspace_id},
                    {"key": "schema_version", "value": db.SCHEMA_VERSION},
                    {"key": "blobs_recorded", "value": "1"},
                    {"key": "secret", "value": secrets.token_hex(32)}]  # keys masks and saved plans
            missing = [r for r in rows if r["key"] not in have]
            if missing:
                conn.execute(insert(db.meta), missing)
            if conn.execute(select(db.serial.c.value)).first() is None:
                conn.execute(insert(db.serial).values(id=1, value=0))
        if read_marker(self.artifacts) is None:
            write_marker(self.artifacts, workspace_id, db.mask_url(self.url))
        if self.engine.dialect.name == "sqlite":
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                restrict(self.path / name)  # it holds the endpoints' keys
        self._ready = self._checked = True

    def close(self) -> None:
        self.engine.dispose()

    # -- reading ---------------------------------------------------------------------------------

    def read(self) -> Snapshot:
        if not self.has_state():
            return Snapshot(None, 0)
        with self.reading() as conn:
            meta = {r.key: r.value for r in conn.execute(select(db.meta))}
            files: dict[int, list[ArtifactFile]] = {}
            for f in conn.execute(select(db.asset_files).order_by(db.asset_files.c.rel)):
                files.setdefault(f.resource_id, []).append(ArtifactFile(f.rel, f.sha256, f.size))
            serial = conn.execute(select(db.serial.c.value)).scalar() or 0
            secret = meta.get("secret")
            snap = Snapshot(meta.get("workspace_id") or meta.get("lineage"), int(serial),
                            secret=bytes.fromhex(secret) if secret else None)
            for row in conn.execute(select(db.resources)):
                res = rows.to_actual(row._mapping, tuple(files.get(row.id, ())))
                snap.resources[res.address] = res
            for c in conn.execute(select(db.counters)):
                snap.counters[(Kind(c.kind), c.name)] = c.last
            snap.job_outputs = latest_outputs(conn)
        return snap

    def masker(self) -> Masker:
        """The workspace's keyed masker (see Snapshot.masker), without reading the whole state."""
        secret = None
        if self.has_state():
            with self.reading() as conn:
                secret = conn.execute(select(db.meta.c.value).where(db.meta.c.key == "secret")).scalar()
        return Snapshot(None, 0, secret=bytes.fromhex(secret) if secret else None).masker()

    def get(self, address: Address) -> ActualResource | None:
        if not self.has_state():
            return None
        with self.reading() as conn:
            row = _find(conn, address)
            if row is None:
                return None
            files = tuple(ArtifactFile(f.rel, f.sha256, f.size) for f in conn.execute(
                select(db.asset_files).where(db.asset_files.c.resource_id == row.id).order_by(db.asset_files.c.rel)))
        return rows.to_actual(row._mapping, files)

    def change_log(self, address: Address | None = None, source_file: str | None = None) -> list[ChangeRecord]:
        if not self.has_state():
            return []
        q = select(db.changes).order_by(db.changes.c.id)
        if address is not None:
            q = q.where(db.changes.c.kind == address.kind.value, db.changes.c.name == address.name)
            if address.version is not None:
                q = q.where(db.changes.c.version == address.version)
        if source_file is not None:
            q = q.where(db.changes.c.source_file == source_file)
        with self.reading() as conn:
            return [
                ChangeRecord(r.id, r.apply_id, r.at, Address(Kind(r.kind), r.name, r.version or None), r.action,
                             r.origin, r.before_hash, r.after_hash, r.source_file,
                             rows.loads(r.provenance, f"mg_changes.provenance of change {r.id}"))
                for r in conn.execute(q)
            ]

    def search_tags(self, key: str, value: str | None) -> list[Address]:
        if not self.has_state():
            return []
        q = select(db.resources.c.kind, db.resources.c.name, db.resources.c.version).join(
            db.tags, db.tags.c.resource_id == db.resources.c.id).where(db.tags.c.key == key)
        if value is not None:
            q = q.where(db.tags.c.value == value)
        with self.reading() as conn:
            return sorted(Address(Kind(r.kind), r.name, r.version or None) for r in conn.execute(q))

    def job_outputs(self, job: str | None = None) -> JobOutputs:
        """Outputs of the latest completed run of each pipeline job (or of one)."""
        if not self.has_state():
            return {}
        with self.reading() as conn:
            return latest_outputs(conn, job)

    # -- remote inputs ---------------------------------------------------------------------------

    def remote_object(self, key: str) -> tuple[str, str, int] | None:
        """(validator, sha256, size) of a remote object downloaded before, if its copy is still stored."""
        if not self.has_state():
            return None
        with self.reading() as conn:
            row = conn.execute(select(db.remote_objects).where(db.remote_objects.c.key == key)).first()
        if row is None or not self.artifacts.has(row.sha256):
            return None
        return row.etag, row.sha256, row.size

    def remember_remote_object(self, key: str, shown: str, etag: str, sha256: str, size: int) -> None:
        with self.writing() as conn:
            conn.execute(delete(db.remote_objects).where(db.remote_objects.c.key == key))
            conn.execute(insert(db.remote_objects).values(key=key, shown=shown, etag=etag, sha256=sha256, size=size,
                                                          fetched_at=now()))

    # -- keys ------------------------------------------------------------------------------------

    def endpoint_keys(self, endpoint: str) -> tuple[str, str]:
        """The endpoint's primary and secondary keys, made on first use."""
        with self.writing() as conn:
            row = conn.execute(select(db.endpoint_keys).where(db.endpoint_keys.c.endpoint == endpoint)).first()
            if row is None:
                keys = (secrets.token_urlsafe(32), secrets.token_urlsafe(32))
                conn.execute(insert(db.endpoint_keys).values(endpoint=endpoint, primary_key=keys[0],
                                                             secondary_key=keys[1]))
                return keys
            return row.primary_key, row.secondary_key

    def metrics_key(self) -> str:
        """The workspace's key for the endpoint host's /metrics, made on first use."""
        return self.endpoint_keys(METRICS_KEY_NAME)[0]

    def regenerate_key(self, endpoint: str, which: str) -> tuple[str, str]:
        primary, secondary = self.endpoint_keys(endpoint)
        fresh = secrets.token_urlsafe(32)
        keys = (fresh, secondary) if which == "primary" else (primary, fresh)
        with self.writing() as conn:
            conn.execute(update(db.endpoint_keys).where(db.endpoint_keys.c.endpoint == endpoint).values(
                primary_key=keys[0], secondary_key=keys[1]))
            _bump_serial(conn)  # hosts that follow the workspace pick the new key up
        return keys

    # -- hosts that follow the workspace -----------------------------------------------------------

    def serial(self) -> int:
        """The state serial alone (bumped by every change): what following hosts poll."""
        if not self.has_state():
            return 0
        with self.reading() as conn:
            return int(conn.execute(select(db.serial.c.value)).scalar() or 0)

    def report_host(self, host_id: str, url: str, pid: int, serial: int, status: dict[str, Any]) -> None:
        stamp = now()
        with self.writing() as conn:
            values = {"url": url, "pid": pid, "serial": serial, "heartbeat": stamp, "status": canonical_json(status)}
            if conn.execute(update(db.hosts).where(db.hosts.c.id == host_id).values(**values)).rowcount == 0:
                conn.execute(insert(db.hosts).values(id=host_id, started_at=stamp, **values))

    def record_figures(self, host_id: str, figures: dict[str, dict[str, Any]]) -> None:
        """A host's cumulative per-deployment figures, replacing its previous ones."""
        stamp = now()
        with self.writing() as conn:
            conn.execute(delete(db.figures).where(db.figures.c.host == host_id))
            if figures:
                conn.execute(insert(db.figures), [{"host": host_id, "deployment": key, "at": stamp,
                                                   "figures": canonical_json(value)}
                                                  for key, value in sorted(figures.items())])

    def figures(self) -> dict[str, dict[str, Any]]:
        """Per deployment, the figures of every host summed: requests, errors, summed latency, latency buckets."""
        if not self.has_state():
            return {}
        self.ensure()
        out: dict[str, dict[str, Any]] = {}
        with self.reading() as conn:
            for r in conn.execute(select(db.figures)):
                value = rows.loads(r.figures, f"mg_figures of {r.host}")
                mine = out.setdefault(r.deployment, {"requests": 0, "errors": 0, "latency_us": 0, "buckets": [],
                                                     "at": r.at, "hosts": 0})
                mine["hosts"] += 1
                for key in ("requests", "errors", "latency_us"):
                    mine[key] += int(value.get(key) or 0)
                given = [int(b) for b in value.get("buckets") or []]
                mine["buckets"] = [a + b for a, b in zip(mine["buckets"] or [0] * len(given), given, strict=True)]
                mine["at"] = max(mine["at"], r.at)
        return out

    def forget_host(self, host_id: str) -> None:
        with self.writing() as conn:
            conn.execute(delete(db.hosts).where(db.hosts.c.id == host_id))

    def hosts(self) -> list[dict[str, Any]]:
        if not self.has_state():
            return []
        self.ensure()
        with self.reading() as conn:
            return [{"id": r.id, "url": r.url, "pid": r.pid, "serial": r.serial, "started_at": r.started_at,
                     "heartbeat": r.heartbeat, "status": rows.loads(r.status, f"mg_hosts.status of {r.id}")}
                    for r in conn.execute(select(db.hosts).order_by(db.hosts.c.id))]

    # -- the lock, applies and the journal ---------------------------------------------------------

    @contextmanager
    def lock(self, operation: str, reason: str, timeout: float, warn: Any) -> Iterator[LockInfo]:
        self.ensure()
        with self.guard(), workspace_lock(self.engine, self.path, operation, reason, timeout, warn) as info:
            yield info

    def lock_free(self) -> AbstractContextManager[bool]:
        """Briefly hold the OS-level lock if nobody does: True inside when this process got it."""
        return _try_os_lock(self)

    def lock_holder(self) -> LockInfo | None:
        if not self.has_state():
            return None
        with self.guard():
            return read_holder(self.engine)

    def force_unlock(self, lock_id: str) -> LockInfo:
        holder = self.lock_holder()
        if holder is None:
            raise NotFoundError("the workspace is not locked")
        if holder.id != lock_id:
            raise NotFoundError(f"lock ID {lock_id} does not match the current lock ({holder.describe()})")
        with self.lock_free() as free:
            if not free:
                raise LockHeldError(f"the lock is still held by a running process: {holder.describe()}; stop it first")
            with self.writing() as conn:
                conn.execute(delete(db.locks).where(db.locks.c.id == lock_id))
        return holder

    def begin_apply(self, apply_id: str, who: str, source: dict[str, Any]) -> None:
        with self.writing() as conn:
            conn.execute(insert(db.applies).values(id=apply_id, started_at=now(), status="running", who=who,
                                                   source=canonical_json(source), summary="{}"))

    def finish_apply(self, apply_id: str, status: str, summary: dict[str, Any]) -> None:
        with self.writing() as conn:
            conn.execute(update(db.applies).where(db.applies.c.id == apply_id).values(
                finished_at=now(), status=status, summary=canonical_json(summary)))

    def journal(self, apply_id: str, address: Address, action: str, phase: str, detail: str = "") -> None:
        with self.writing() as conn:
            _journal(conn, apply_id, address, action, phase, detail=detail)

    def interrupted(self) -> list[dict[str, Any]]:
        """Applies that never finished, with the actions they had begun but not ended."""
        if not self.has_state():
            return []
        with self.reading() as conn:
            runs = conn.execute(select(db.applies).where(db.applies.c.status == "running")).fetchall()
            out = []
            for run in runs:
                entries = conn.execute(select(db.journal).where(db.journal.c.apply_id == run.id)
                                       .order_by(db.journal.c.id)).fetchall()
                begun = {e.address: e.action for e in entries if e.phase == "begin"}
                for e in entries:
                    if e.phase != "begin":
                        begun.pop(e.address, None)
                out.append({"id": run.id, "who": run.who, "started_at": run.started_at, "open": begun})
            return out

    def mark_abandoned(self, apply_id: str) -> None:
        with self.writing() as conn:
            conn.execute(update(db.applies).where(db.applies.c.id == apply_id).values(
                status="interrupted", finished_at=now()))

    # -- resources -------------------------------------------------------------------------------

    def write(self, desired: DesiredResource, action: str, provenance: dict[str, Any], apply_id: str | None,
              origin: str = "apply", journal_begin: bool = False) -> Written:
        """Record one resource (its files are stored already), atomically, bumping the serial."""
        addr = desired.address
        stamp = now()
        spec_json, derived_json = canonical_json(desired.spec), canonical_json(desired.derived)
        applied = origin == "apply"
        with self.writing() as conn:
            existing = _find(conn, addr)
            values: dict[str, Any] = dict(
                schema_name=desired.schema_name, spec=spec_json, derived=derived_json,
                content_hash=desired.content_hash, spec_hash=desired.spec_hash, status="active",
                source_file=desired.source_file, updated_at=stamp, provenance=canonical_json(provenance))
            if applied:
                values |= dict(applied_spec=spec_json, applied_hash=desired.spec_hash, managed=True)
            if existing is None:
                values |= dict(kind=addr.kind.value, name=addr.name, version=addr.version or "", created_at=stamp)
                if not applied:
                    values |= dict(applied_spec=None, applied_hash=None, managed=False)
                key = conn.execute(_INSERT_RESOURCE, values).inserted_primary_key
                assert key is not None
                rid = key[0]
                before = None
            else:
                rid, before = existing.id, existing.spec_hash
                conn.execute(update(db.resources).where(db.resources.c.id == rid).values(**values))
                conn.execute(_DELETE_FILES, {"b_rid": rid})
                conn.execute(_DELETE_TAGS, {"b_rid": rid})
            if desired.artifacts:
                conn.execute(_INSERT_FILES, [
                    {"resource_id": rid, "rel": a.rel, "sha256": a.sha256, "size": a.size} for a in desired.artifacts])
            tag_rows = [{"resource_id": rid, "key": k, "value": str(v)}
                        for k, v in (desired.spec.get("tags") or {}).items()]
            if tag_rows:
                conn.execute(_INSERT_TAGS, tag_rows)
            if desired.auto_version:
                _bump_counter(conn, addr)
            _log(conn, apply_id, addr, action, origin, before, desired.spec_hash, desired.source_file, provenance)
            if apply_id:
                _journal(conn, apply_id, addr, action, *(("begin", "end") if journal_begin else ("end",)))
            _bump_serial(conn)
            failpoint("before-commit")
        failpoint("after-commit")
        return Written(ActualResource(
            address=addr, spec=desired.spec, derived=desired.derived, content_hash=desired.content_hash,
            spec_hash=desired.spec_hash, applied_spec=desired.spec if applied else None,
            applied_hash=desired.spec_hash if applied else None, status="active", managed=applied,
            source_file=desired.source_file, created_at=stamp if existing is None else existing.created_at,
            updated_at=stamp, provenance=provenance, schema_name=desired.schema_name,
            files=tuple(desired.artifacts)), existing is None)

    def set_status(self, address: Address, status: str, provenance: dict[str, Any], apply_id: str | None,
                   origin: str) -> None:
        with self.writing() as conn:
            row = _find(conn, address)
            if row is None:
                raise NotFoundError(f"{address} does not exist in the workspace")
            merged = {**rows.loads(row.provenance, f"provenance of {address}"), **provenance}
            conn.execute(update(db.resources).where(db.resources.c.id == row.id).values(
                status=status, updated_at=now(), provenance=canonical_json(merged)))
            action = "archive" if status == "archived" else "restore"
            _log(conn, apply_id, address, action, origin, row.spec_hash, row.spec_hash,
                 row.source_file, provenance)
            if apply_id:
                _journal(conn, apply_id, address, action, "end")
            _bump_serial(conn)

    def set_spec(self, address: Address, spec: dict[str, Any], spec_hash: str, provenance: dict[str, Any]) -> None:
        """An out-of-band change (from a CLI command, not from Git): shows up as drift."""
        with self.writing() as conn:
            row = _find(conn, address)
            if row is None:
                raise NotFoundError(f"{address} does not exist in the workspace")
            conn.execute(update(db.resources).where(db.resources.c.id == row.id).values(
                spec=canonical_json(spec), spec_hash=spec_hash, updated_at=now()))
            _log(conn, None, address, "update", "cli", row.spec_hash, spec_hash, row.source_file, provenance)
            _bump_serial(conn)

    def remove(self, address: Address, provenance: dict[str, Any], apply_id: str | None, origin: str) -> None:
        with self.writing() as conn:
            row = _find(conn, address)
            if row is not None:
                conn.execute(delete(db.asset_files).where(db.asset_files.c.resource_id == row.id))
                conn.execute(delete(db.tags).where(db.tags.c.resource_id == row.id))
                conn.execute(delete(db.resources).where(db.resources.c.id == row.id))
                _log(conn, apply_id, address, "delete", origin, row.spec_hash, None, row.source_file, provenance)
            if apply_id:
                _journal(conn, apply_id, address, "delete", "end")
            _bump_serial(conn)

    # -- stored files ----------------------------------------------------------------------------

    def artifact_path(self, sha256: str) -> Path:
        return self.artifacts.path(sha256)

    def store_files(self, files: list[ArtifactFile]) -> None:
        """Copy files into the content-addressed store, recording each before it is copied."""
        self.record_blobs([a.sha256 for a in files if a.source is not None])
        for art in files:
            if art.source is not None:
                self.artifacts.put(art.source, art.sha256)
                failpoint("artifact-stored")

    def record_blobs(self, digests: list[str], lease: str | None = None) -> None:
        """Note files about to be stored, before they are copied: garbage collection may delete only these.
        With `lease` (a running run's ID) they are also kept until that run ends."""
        if digests:
            with self.writing() as conn:
                _record_blobs(conn, set(digests))
                if lease:
                    add_leases(conn, lease, set(digests))

    def collect_garbage(self) -> int:
        """Remove stored files that this store recorded and nothing refers to any more (left by interrupted
        applies and runs). Files it never recorded are never touched; a store made by this process has
        nothing to judge yet. Call under the lock."""
        if self.new_store or not self.has_state():
            return 0
        with self.reading() as conn:
            referenced = _referenced(conn)
            recorded = {r.sha256 for r in conn.execute(select(db.blobs.c.sha256))}
        removed = self.artifacts.remove(recorded - referenced)
        if removed:
            with self.writing() as conn:
                for chunk in _chunks(sorted(removed), 500):
                    conn.execute(delete(db.blobs).where(db.blobs.c.sha256.in_(chunk)))
        return len(removed) + self.artifacts.remove_interrupted_copies()

    # -- events ------------------------------------------------------------------------------------

    def add_event(self, event: Event) -> None:
        with self.writing() as conn:
            conn.execute(insert(db.events).values(id=event.id, at=event.time, type=event.type, subject=event.subject,
                                                  document=event.to_json()))

    def events(self, after: int = 0, limit: int | None = None) -> list[Any]:
        """Recorded events in order (rows with seq, at, type, subject, document): the last `limit` after `after`."""
        if not self.has_state():
            return []
        q = select(db.events).where(db.events.c.seq > after).order_by(db.events.c.seq.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.reading() as conn:
            return list(reversed(conn.execute(q).fetchall()))


@contextmanager
def _try_os_lock(store: LocalStore) -> Iterator[bool]:
    os_lock = os_lock_for(store.engine, store.path)
    with store.guard():
        got = os_lock.try_acquire()
    try:
        yield got
    finally:
        if got:
            os_lock.release()


def _referenced(conn: Connection) -> set[str]:
    """Every stored file some resource, run or reuse-cache entry refers to, or a running run holds."""
    referenced = {r.sha256 for r in conn.execute(select(db.asset_files.c.sha256))}
    referenced.update(r.sha256 for r in conn.execute(select(db.remote_objects.c.sha256)))  # downloads kept
    referenced.update(r.sha256 for r in conn.execute(
        select(db.leases.c.sha256).join(db.runs, db.runs.c.id == db.leases.c.run_id)
        .where(db.runs.c.status == "running")))
    for table in (db.step_cache, db.run_steps, db.runs):  # pipeline outputs, reused and recorded
        for (text,) in conn.execute(select(table.c.outputs)):
            for record in rows.loads(text, f"{table.name}.outputs").values():
                referenced.update(sha for _, sha, _ in record.get("files", []))
    return referenced


def _record_blobs(conn: Connection, digests: set[str]) -> None:
    have = {r.sha256 for chunk in _chunks(sorted(digests), 500)
            for r in conn.execute(select(db.blobs.c.sha256).where(db.blobs.c.sha256.in_(chunk)))}
    fresh = sorted(digests - have)
    if fresh:
        stamp = now()
        conn.execute(insert(db.blobs), [{"sha256": d, "recorded_at": stamp} for d in fresh])


def add_leases(conn: Connection, run_id: str, digests: set[str]) -> None:
    """Keep these files for a running run (see db.leases)."""
    have = {r.sha256 for r in conn.execute(select(db.leases.c.sha256).where(db.leases.c.run_id == run_id))}
    fresh = sorted(digests - have)
    if fresh:
        conn.execute(insert(db.leases), [{"run_id": run_id, "sha256": d} for d in fresh])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def latest_outputs(conn: Connection, job: str | None = None) -> JobOutputs:
    """Outputs of the latest completed run of each pipeline job (or of one)."""
    q = select(db.runs.c.id, db.runs.c.pipeline, db.runs.c.outputs).where(db.runs.c.status == "completed")
    if job is not None:
        q = q.where(db.runs.c.pipeline == job)
    return rows.job_outputs(r._mapping for r in conn.execute(q.order_by(db.runs.c.finished_at)))


# The statements of the write path, built once: building a statement per call (coercing each literal) cost
# more than the SQL itself (~2 ms of every resource written).
_FIND = select(db.resources).where(db.resources.c.kind == bindparam("b_kind"),
                                   db.resources.c.name == bindparam("b_name"),
                                   db.resources.c.version == bindparam("b_version"))
_INSERT_RESOURCE = insert(db.resources)
_DELETE_FILES = delete(db.asset_files).where(db.asset_files.c.resource_id == bindparam("b_rid"))
_DELETE_TAGS = delete(db.tags).where(db.tags.c.resource_id == bindparam("b_rid"))
_INSERT_FILES = insert(db.asset_files)
_INSERT_TAGS = insert(db.tags)
_INSERT_CHANGE = insert(db.changes)
_INSERT_JOURNAL = insert(db.journal)
_BUMP_SERIAL = update(db.serial).where(db.serial.c.id == 1).values(value=db.serial.c.value + 1)


def _find(conn: Connection, addr: Address) -> Any:
    return conn.execute(_FIND, {"b_kind": addr.kind.value, "b_name": addr.name,
                                "b_version": addr.version or ""}).first()


def _bump_serial(conn: Connection) -> None:
    conn.execute(_BUMP_SERIAL)


def _bump_counter(conn: Connection, addr: Address) -> None:
    current = conn.execute(select(db.counters.c.last).where(
        db.counters.c.kind == addr.kind.value, db.counters.c.name == addr.name)).scalar()
    last = versioning.counter_after(current, addr.version)
    if last is None:
        return
    if current is None:
        conn.execute(insert(db.counters).values(kind=addr.kind.value, name=addr.name, last=last))
    else:
        conn.execute(update(db.counters).where(db.counters.c.kind == addr.kind.value,
                                               db.counters.c.name == addr.name).values(last=last))


def _log(conn: Connection, apply_id: str | None, addr: Address, action: str, origin: str, before: str | None,
         after: str | None, source_file: str | None, provenance: dict[str, Any]) -> None:
    conn.execute(_INSERT_CHANGE, dict(
        apply_id=apply_id, at=now(), kind=addr.kind.value, name=addr.name, version=addr.version or "",
        action=action, origin=origin, before_hash=before, after_hash=after, source_file=source_file,
        provenance=canonical_json(provenance)))


def _journal(conn: Connection, apply_id: str, addr: Address, action: str, *phases: str, detail: str = "") -> None:
    stamp = now()
    conn.execute(_INSERT_JOURNAL, [{"apply_id": apply_id, "at": stamp, "address": str(addr), "action": action,
                                       "phase": phase, "detail": detail} for phase in phases])
