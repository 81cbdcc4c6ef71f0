"""LocalBackend: the workspace folder (artifacts, logs) plus its SQL metadata store."""

from __future__ import annotations

import secrets
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from mlops_gitops.actor import now
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import db
from mlops_gitops.backends.local.artifacts import ArtifactStore
from mlops_gitops.backends.local.deploy import Deployer
from mlops_gitops.backends.local.identity import check_store, read_marker, write_marker
from mlops_gitops.backends.local.lock import creation_lock, os_lock_for, read_holder, workspace_lock
from mlops_gitops.backends.local.serving import ServingController
from mlops_gitops.errors import LockHeldError, NotFoundError, WorkspaceError
from mlops_gitops.events.model import Event
from mlops_gitops.events.sinks import Dispatcher, Sink
from mlops_gitops.faults import failpoint
from mlops_gitops.fsutil import UnsafePathError, ensure_dir, restrict
from mlops_gitops.hashing import canonical_json, content_summary, spec_hash, versioned_content
from mlops_gitops.redact import Masker
from mlops_gitops.spec.references import JobOutputRef, resolved_job_output
from mlops_gitops.state import (
    ActualResource,
    ArtifactFile,
    ChangeRecord,
    DesiredResource,
    JobOutputs,
    LockInfo,
    Snapshot,
    run_output_files,
)
from mlops_gitops.textsafe import defuse_text

SERVED = frozenset({Kind.ONLINE_ENDPOINT, Kind.ONLINE_DEPLOYMENT, Kind.TRAFFIC})
METRICS_KEY_NAME = "-metrics"  # a row of mg_endpoint_keys no endpoint can own (names start with a letter)
RUNNABLE = ("pipeline", "command")  # job types the local workspace runs when applied


def _warn(message: str) -> None:
    print(defuse_text(f"Warning: {message}"), file=sys.stderr)


def _note(message: str) -> None:
    print(defuse_text(message), file=sys.stderr, flush=True)


class LocalBackend:
    name = "local"

    def __init__(self, path: Path, database: str | None = None, warn: Callable[[str], None] = _warn,
                 runtime: str = "none", port: int = 0, base_image: str | None = None,
                 sinks: list[Sink] | None = None, source: str | None = None) -> None:
        self.path = path
        self.runtime = runtime  # process | container: online endpoints are served; none: recorded only
        self.port = port
        self.base_image = base_image
        self.tree_root: Path | None = None  # the repository tree being applied (run snapshots diff it)
        self.source = source or f"mlops-gitops://local/{path.name}"  # CloudEvents source of its events
        self.dispatcher = Dispatcher(sinks or [], path / "events" / "dead-letter.jsonl", lambda m: self.warn(m))
        self._deployer: Deployer | None = None
        self.url = database or f"sqlite:///{path / 'state.db'}"
        self.warn = warn
        self.note: Callable[[str], None] = _note  # progress of slow steps (environment and image builds)
        self.artifacts = ArtifactStore(path)
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

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._errors(), self._write, self.engine.begin() as conn:
            yield conn

    def writing(self) -> AbstractContextManager[Connection]:
        """One write transaction (for the pipeline records kept beside the resources)."""
        self.ensure()
        return self._writing()

    @property
    def deployer(self) -> Deployer | None:
        """What serves online endpoints, or None when this workspace only records them."""
        if self.runtime == "none":
            return None
        if self.runtime not in ("process", "container"):
            raise WorkspaceError(f"unknown runtime '{self.runtime}': use process, container or none")
        if self._deployer is None:
            controller = ServingController(self.path, self.port, metrics_key=self.metrics_key)
            self._deployer = Deployer(self, controller, self.runtime, self.base_image)
        return self._deployer

    # -- connection handling -------------------------------------------------------------------

    def has_state(self) -> bool:
        """Whether the workspace's tables exist (nothing was ever written otherwise)."""
        return self._exists()

    def _store_lineage(self) -> str | None:
        """The store's lineage; None when it has no tables (or no SQLite file: connecting would make one)."""
        if self.engine.dialect.name == "sqlite" and not (self.path / "state.db").exists():
            return None
        with self._errors(), self.engine.connect() as conn:
            try:
                value = conn.execute(select(db.meta.c.value).where(db.meta.c.key == "lineage")).scalar()
            except (OperationalError, ProgrammingError):
                return None  # no tables yet: a workspace that was never written
        return str(value) if value else None

    def _exists(self) -> bool:
        if self._checked:
            return True
        lineage = self._store_lineage()
        check_store(self.path, lineage, db.mask_url(self.url))  # an empty store beside stored files: refused
        self._checked = lineage is not None
        return self._checked

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise WorkspaceError(f"cannot use workspace database {db.mask_url(self.url)}: {reason}") from None
        except SQLAlchemyError as exc:
            raise WorkspaceError(f"workspace database {db.mask_url(self.url)}: {exc}") from None

    def ensure(self) -> None:
        """Create the folder and tables on first write; give the workspace its lineage."""
        if self._ready:
            return
        try:
            ensure_dir(self.path)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace folder {self.path}: {exc.strerror}") from None
        with self._errors(), creation_lock(self.engine, self.path) as conn:
            lineage = self._store_lineage()
            check_store(self.path, lineage, db.mask_url(self.url))  # before anything is written
            db.metadata.create_all(conn)  # also adds the tables of newer versions to an older store
            have = {r.key for r in conn.execute(select(db.meta.c.key))}
            if lineage is None:
                lineage = str(uuid.uuid4())
                self.new_store = True
            elif "blobs_recorded" not in have:  # a store from before mg_blobs: what it references is its own
                _record_blobs(conn, _referenced(conn))
            rows = [{"key": "lineage", "value": lineage}, {"key": "schema_version", "value": db.SCHEMA_VERSION},
                    {"key": "blobs_recorded", "value": "1"},
                    {"key": "secret", "value": secrets.token_hex(32)}]  # keys masks and saved plans
            missing = [r for r in rows if r["key"] not in have]
            if missing:
                conn.execute(insert(db.meta), missing)
            if conn.execute(select(db.serial.c.value)).first() is None:
                conn.execute(insert(db.serial).values(id=1, value=0))
        if read_marker(self.path) is None:
            write_marker(self.path, lineage, db.mask_url(self.url))
        if self.engine.dialect.name == "sqlite":
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                restrict(self.path / name)  # it holds the endpoints' keys
        self._ready = self._checked = True

    def close(self) -> None:
        self.dispatcher.drain()
        self.engine.dispose()

    def emit(self, type_: str, subject: str, data: dict[str, Any]) -> Event:
        """Record a lifecycle event in the workspace and hand it to the configured sinks."""
        event = Event(type_, self.source, subject, data)
        self.ensure()
        with self._writing() as conn:
            conn.execute(insert(db.events).values(id=event.id, at=event.time, type=event.type, subject=subject,
                                                  document=event.to_json()))
        self.dispatcher.publish(event)
        return event

    # -- reading ---------------------------------------------------------------------------------

    def read(self) -> Snapshot:
        if not self._exists():
            return Snapshot(None, 0)
        with self._errors(), self.engine.connect() as conn:
            meta = {r.key: r.value for r in conn.execute(select(db.meta))}
            files: dict[int, list[ArtifactFile]] = {}
            for f in conn.execute(select(db.asset_files).order_by(db.asset_files.c.rel)):
                files.setdefault(f.resource_id, []).append(ArtifactFile(f.rel, f.sha256, f.size))
            serial = conn.execute(select(db.serial.c.value)).scalar() or 0
            secret = meta.get("secret")
            snap = Snapshot(meta.get("lineage"), int(serial), secret=bytes.fromhex(secret) if secret else None)
            for row in conn.execute(select(db.resources)):
                res = _to_actual(row, tuple(files.get(row.id, ())))
                snap.resources[res.address] = res
            for c in conn.execute(select(db.counters)):
                snap.counters[(Kind(c.kind), c.name)] = c.last
            snap.job_outputs = latest_outputs(conn)
        return snap

    def masker(self) -> Masker:
        """The workspace's keyed masker (see Snapshot.masker), without reading the whole state."""
        secret = None
        if self._exists():
            with self._errors(), self.engine.connect() as conn:
                secret = conn.execute(select(db.meta.c.value).where(db.meta.c.key == "secret")).scalar()
        return Snapshot(None, 0, secret=bytes.fromhex(secret) if secret else None).masker()

    def change_log(self, address: Address | None = None, source_file: str | None = None) -> list[ChangeRecord]:
        if not self._exists():
            return []
        q = select(db.changes).order_by(db.changes.c.id)
        if address is not None:
            q = q.where(db.changes.c.kind == address.kind.value, db.changes.c.name == address.name)
            if address.version is not None:
                q = q.where(db.changes.c.version == address.version)
        if source_file is not None:
            q = q.where(db.changes.c.source_file == source_file)
        with self._errors(), self.engine.connect() as conn:
            return [
                ChangeRecord(r.id, r.apply_id, r.at, Address(Kind(r.kind), r.name, r.version or None), r.action,
                             r.origin, r.before_hash, r.after_hash, r.source_file,
                             db.loads(r.provenance, f"mg_changes.provenance of change {r.id}"))
                for r in conn.execute(q)
            ]

    def search_tags(self, key: str, value: str | None) -> list[Address]:
        if not self._exists():
            return []
        q = select(db.resources.c.kind, db.resources.c.name, db.resources.c.version).join(
            db.tags, db.tags.c.resource_id == db.resources.c.id).where(db.tags.c.key == key)
        if value is not None:
            q = q.where(db.tags.c.value == value)
        with self._errors(), self.engine.connect() as conn:
            return sorted(Address(Kind(r.kind), r.name, r.version or None) for r in conn.execute(q))

    def get(self, address: Address) -> ActualResource | None:
        if not self._exists():
            return None
        with self._errors(), self.engine.connect() as conn:
            row = _find(conn, address)
            if row is None:
                return None
            files = tuple(ArtifactFile(f.rel, f.sha256, f.size) for f in conn.execute(
                select(db.asset_files).where(db.asset_files.c.resource_id == row.id).order_by(db.asset_files.c.rel)))
        return _to_actual(row, files)

    def endpoint_keys(self, endpoint: str) -> tuple[str, str]:
        """The endpoint's primary and secondary keys, made on first use."""
        self.ensure()
        with self._writing() as conn:
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
        with self._writing() as conn:
            conn.execute(update(db.endpoint_keys).where(db.endpoint_keys.c.endpoint == endpoint).values(
                primary_key=keys[0], secondary_key=keys[1]))
        if self.deployer is not None and self.deployer.controller.info() is not None:
            self.deployer.controller.put_endpoint(self.deployer.endpoint_config(endpoint))
        return keys

    def _with_dvc_data(self, desired: DesiredResource) -> DesiredResource:
        """A DVC-tracked asset whose data is not in the working tree: fetch it with DVC, then store it."""
        info = (desired.derived.get("paths") or {}).get("path") or {}
        if "tracked" not in info or desired.artifacts or desired.address.kind not in (Kind.MODEL, Kind.DATA):
            return desired
        from mlops_gitops.hashing import path_manifest
        from mlops_gitops.lineage.dvc import DvcError, fetch, tracked

        if self.tree_root is None:
            raise WorkspaceError(f"its data ({info['tracked']}) must be fetched with DVC; "
                                 "apply it from its repository")
        path = self.tree_root / info["tracked"]
        try:
            t = tracked(path)
            if t is None or t.md5 != info["dvc"]:
                raise WorkspaceError(f"{info['tracked']} is not tracked as planned; plan again")
            self.note(f"  fetching {t.rel} (md5 {t.md5}) with DVC")
            fetch(t)
        except DvcError as exc:
            raise WorkspaceError(str(exc)) from None
        base = path if path.is_dir() else path.parent
        try:
            manifest = path_manifest(path, self.tree_root)
        except UnsafePathError as exc:
            raise WorkspaceError(str(exc)) from None
        files = [ArtifactFile(rel, digest, size, base / rel) for rel, digest, size in manifest]
        return replace(desired, artifacts=files)

    def _run_metrics(self, run_id: str) -> dict[str, Any]:
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(select(db.run_steps.c.metrics).where(db.run_steps.c.run_id == run_id)
                                .order_by(db.run_steps.c.step)).fetchall()
        merged: dict[str, Any] = {}
        for (text,) in rows:
            merged.update(db.loads(text, f"mg_run_steps.metrics of run {run_id}"))
        return merged

    def _from_latest_run(self, desired: DesiredResource,
                         ref: JobOutputRef) -> tuple[DesiredResource | ActualResource, str]:
        """A model or data asset made of a job's output: its files, content and version from the latest run."""
        with self._errors(), self.engine.connect() as conn:
            outputs = latest_outputs(conn, ref.job)
        run_id, files = run_output_files(outputs, ref.job, ref.output, ref.subpath)
        if run_id is None:
            where = f"output '{ref.output}'" + (f" path '{ref.subpath}'" if ref.subpath else "")
            raise WorkspaceError(f"job '{ref.job}' has no completed run with {where} (run it: mlops-gitops job run)")
        paths = {"path": content_summary([(f.rel, f.sha256, f.size) for f in files], True)}
        derived = {**desired.derived, "paths": paths}
        content = versioned_content(desired.spec, derived)
        kind, name = desired.address.kind, desired.address.name
        snapshot = self.read()
        same = [r for r in snapshot.versions(kind, name) if r.content_hash == content]
        if same and desired.auto_version:
            return same[-1], run_id
        version = desired.address.version or "1"
        taken = snapshot.resources.get(Address(kind, name, version))
        if taken is not None and taken.content_hash != content:
            if not desired.auto_version:
                raise WorkspaceError(f"{desired.address} exists with other files; run {run_id} produced new ones: "
                                     "bump the version (or remove 'version' to number it automatically)")
            version = snapshot.next_version(kind, name)
        spec = {**desired.spec, "version": version}
        return replace(desired, address=Address(kind, name, version), spec=spec, derived=derived,
                       content_hash=content, spec_hash=spec_hash({"spec": spec, "derived": derived}),
                       artifacts=[ArtifactFile(f.rel, f.sha256, f.size) for f in files]), run_id

    def pipeline_preview(self, desired: DesiredResource,
                         pending: dict[Address, DesiredResource]) -> list[dict[str, str]] | str:
        """Which steps of a pipeline job a run would run or reuse now (for plan)."""
        from mlops_gitops.backends.local.jobs import PipelineResolver, preview
        from mlops_gitops.runtime.pipelines.steps import PipelineError

        try:
            pipeline = PipelineResolver(self, pending, preview=True).resolve(
                desired.address.name, desired.spec, desired.derived, desired.artifacts, desired.source_file)
            return [{"step": p.step, "action": p.action, "reason": p.reason} for p in preview(self, pipeline)]
        except (PipelineError, WorkspaceError) as exc:
            return f"cannot preview its steps: {exc}"

    def run_for_apply(self, desired: DesiredResource, provenance: dict[str, Any], apply_id: str | None) -> str:
        """Run a pipeline job of the tree (reusing unchanged steps); raise when it does not complete."""
        from mlops_gitops.backends.local.jobs import PipelineResolver, run_pipeline
        from mlops_gitops.runtime.pipelines.steps import PipelineError

        try:
            pipeline = PipelineResolver(self).resolve(desired.address.name, desired.spec, desired.derived,
                                                      desired.artifacts, desired.source_file)
        except PipelineError as exc:
            raise WorkspaceError(f"{desired.source_file}: {exc}") from None
        snapshot: dict[str, Any] = {k: v for k, v in provenance.items() if k.startswith("git.")}
        if self.tree_root is not None:
            from mlops_gitops.lineage.git import uncommitted_diff

            snapshot["git.diff"] = uncommitted_diff(self.tree_root, [])
        run_id, result = run_pipeline(self, pipeline, snapshot, apply_id=apply_id)
        if result.status != "completed":
            failed = [f"step '{n}' {r.status}: {r.message}" for n, r in result.steps.items()
                      if r.status in ("failed", "cancelled")]
            raise WorkspaceError(f"run {run_id} {result.status}: " + ("; ".join(failed) or "see `job show`"))
        return run_id

    def artifact_path(self, sha256: str) -> Path:
        return self.artifacts.path(sha256)

    # -- locking and the journal -----------------------------------------------------------------

    @contextmanager
    def lock(self, operation: str, reason: str = "", timeout: float = 0.0) -> Iterator[LockInfo]:
        self.ensure()
        with self._errors(), workspace_lock(self.engine, self.path, operation, reason, timeout, self.warn) as info:
            self.reap_runs(locked=True)
            yield info

    def reap_runs(self, locked: bool = False) -> int:
        """Mark runs still recorded as running whose process is gone as interrupted. A run holds the workspace
        lock for as long as it runs, so while nobody else holds the lock no run can still be alive."""
        if not self._exists():
            return 0
        if locked:
            return self._mark_interrupted_runs()
        os_lock = os_lock_for(self.engine, self.path)
        with self._errors():
            if not os_lock.try_acquire():
                return 0  # held: a run may be going on right now
            try:
                return self._mark_interrupted_runs()
            finally:
                os_lock.release()

    def _mark_interrupted_runs(self) -> int:
        stamp = now()
        with self._writing() as conn:
            dead = [r.id for r in conn.execute(select(db.runs.c.id).where(db.runs.c.status == "running"))]
            if not dead:
                return 0
            conn.execute(update(db.runs).where(db.runs.c.id.in_(dead)).values(
                status="interrupted", finished_at=stamp,
                message="its process ended before the run finished (killed or crashed)"))
            conn.execute(update(db.run_steps).where(
                db.run_steps.c.run_id.in_(dead), db.run_steps.c.status.in_(("queued", "preparing", "running"))
            ).values(status="interrupted", finished_at=stamp))
        return len(dead)

    def lock_holder(self) -> LockInfo | None:
        if not self._exists():
            return None
        with self._errors():
            return read_holder(self.engine)

    def force_unlock(self, lock_id: str) -> LockInfo:
        holder = self.lock_holder()
        if holder is None:
            raise NotFoundError("the workspace is not locked")
        if holder.id != lock_id:
            raise NotFoundError(f"lock ID {lock_id} does not match the current lock ({holder.describe()})")
        os_lock = os_lock_for(self.engine, self.path)
        if not os_lock.try_acquire():
            raise LockHeldError(f"the lock is still held by a running process: {holder.describe()}; stop it first")
        try:
            with self._writing() as conn:
                conn.execute(delete(db.locks).where(db.locks.c.id == lock_id))
        finally:
            os_lock.release()
        return holder

    def begin_apply(self, apply_id: str, who: str, source: dict[str, Any]) -> None:
        with self._writing() as conn:
            conn.execute(insert(db.applies).values(id=apply_id, started_at=now(), status="running", who=who,
                                                   source=canonical_json(source), summary="{}"))

    def finish_apply(self, apply_id: str, status: str, summary: dict[str, Any]) -> None:
        with self._writing() as conn:
            conn.execute(update(db.applies).where(db.applies.c.id == apply_id).values(
                finished_at=now(), status=status, summary=canonical_json(summary)))

    def journal(self, apply_id: str, address: Address, action: str, phase: str, detail: str = "") -> None:
        with self._writing() as conn:
            _journal(conn, apply_id, address, action, phase, detail=detail)

    def interrupted(self) -> list[dict[str, Any]]:
        """Applies that never finished, with the actions they had begun but not ended."""
        if not self._exists():
            return []
        with self._errors(), self.engine.connect() as conn:
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
        with self._writing() as conn:
            conn.execute(update(db.applies).where(db.applies.c.id == apply_id).values(
                status="interrupted", finished_at=now()))

    # -- writing ---------------------------------------------------------------------------------

    def put(self, desired: DesiredResource, action: str, provenance: dict[str, Any], apply_id: str | None,
            origin: str = "apply", journal_begin: bool = False) -> ActualResource:
        """Create or update one resource (uploading its files first), atomically, bumping the serial."""
        self.ensure()
        prepared = self._prepare(desired, provenance, apply_id)
        if isinstance(prepared, ActualResource):  # a pipeline's run produced what an existing version holds
            if apply_id:
                self.journal(apply_id, desired.address, action, "end", f"same files as {prepared.address}")
            return prepared
        desired, provenance = prepared
        addr = desired.address
        stamp = now()
        spec_json, derived_json = canonical_json(desired.spec), canonical_json(desired.derived)
        applied = origin == "apply"
        with self._writing() as conn:
            existing = _find(conn, addr)
            values: dict[str, Any] = dict(
                schema_name=desired.schema_name, spec=spec_json, derived=derived_json,
                content_hash=desired.content_hash, spec_hash=desired.spec_hash, status="active",
                source_file=desired.source_file, updated_at=stamp, provenance=canonical_json(provenance))
            if applied:
                values |= dict(applied_spec=spec_json, applied_hash=desired.spec_hash, managed=True)
            if existing is None:
                key = conn.execute(insert(db.resources).values(
                    kind=addr.kind.value, name=addr.name, version=addr.version or "", created_at=stamp,
                    **({"managed": False} if not applied else {}), **values)).inserted_primary_key
                assert key is not None
                rid = key[0]
                before = None
            else:
                rid, before = existing.id, existing.spec_hash
                conn.execute(update(db.resources).where(db.resources.c.id == rid).values(**values))
                conn.execute(delete(db.asset_files).where(db.asset_files.c.resource_id == rid))
                conn.execute(delete(db.tags).where(db.tags.c.resource_id == rid))
            if desired.artifacts:
                conn.execute(insert(db.asset_files), [
                    {"resource_id": rid, "rel": a.rel, "sha256": a.sha256, "size": a.size} for a in desired.artifacts])
            tag_rows = [{"resource_id": rid, "key": k, "value": str(v)}
                        for k, v in (desired.spec.get("tags") or {}).items()]
            if tag_rows:
                conn.execute(insert(db.tags), tag_rows)
            if desired.auto_version and addr.version and addr.version.isdigit():
                _bump_counter(conn, addr, int(addr.version))
            _log(conn, apply_id, addr, action, origin, before, desired.spec_hash, desired.source_file, provenance)
            if apply_id:
                _journal(conn, apply_id, addr, action, *(("begin", "end") if journal_begin else ("end",)))
            _bump_serial(conn)
            failpoint("before-commit")
        failpoint("after-commit")
        self._announce(addr, desired, existing is None, provenance)
        return ActualResource(
            address=addr, spec=desired.spec, derived=desired.derived, content_hash=desired.content_hash,
            spec_hash=desired.spec_hash, applied_spec=desired.spec if applied else None,
            applied_hash=desired.spec_hash if applied else None, status="active", managed=applied,
            source_file=desired.source_file, created_at=stamp if existing is None else existing.created_at,
            updated_at=stamp, provenance=provenance, schema_name=desired.schema_name, files=tuple(desired.artifacts))

    def _prepare(self, desired: DesiredResource, provenance: dict[str, Any],
                 apply_id: str | None) -> tuple[DesiredResource, dict[str, Any]] | ActualResource:
        """Everything before the metadata write: files from a run or DVC stored, deployments made ready,
        jobs run. Raises (and writes no metadata) when any of it fails."""
        job_output = resolved_job_output((desired.derived.get("refs") or {}).get("path"))
        if job_output is not None:
            resolved, run_id = self._from_latest_run(desired, job_output)
            if isinstance(resolved, ActualResource):
                return resolved
            desired, provenance = resolved, {**provenance, "run.id": run_id, "run.metrics": self._run_metrics(run_id)}
        desired = self._with_dvc_data(desired)
        self.record_blobs([a.sha256 for a in desired.artifacts if a.source is not None])
        for art in desired.artifacts:
            if art.source is not None:
                self.artifacts.put(art.source, art.sha256)
                failpoint("artifact-stored")
        addr = desired.address
        if addr.kind in SERVED and self.deployer is not None:
            try:
                self.deployer.before_put(desired)  # raises if the deployment does not become ready
            except WorkspaceError as exc:
                if addr.kind is Kind.ONLINE_DEPLOYMENT:
                    self.emit("deployment.failed", str(addr), {"error": str(exc),
                                                               "git.commit": provenance.get("git.commit")})
                raise
        if addr.kind is Kind.JOB and desired.spec.get("type", "command") in RUNNABLE and self.runtime != "none":
            provenance = {**provenance, "run.id": self.run_for_apply(desired, provenance, apply_id)}
        return desired, provenance

    def _announce(self, addr: Address, desired: DesiredResource, created: bool, provenance: dict[str, Any]) -> None:
        facts = {k: provenance[k] for k in ("git.commit", "git.author", "git.pr", "applied_by", "run.id")
                 if provenance.get(k)}
        if addr.kind is Kind.MODEL and created:
            self.emit("model.registered", str(addr), {"name": addr.name, "version": addr.version,
                                                      "files": len(desired.artifacts), **facts})
        elif addr.kind is Kind.ONLINE_DEPLOYMENT:
            self.emit("deployment.created" if created else "deployment.updated", str(addr),
                      {"model": (desired.derived.get("refs") or {}).get("model"), **facts})
        elif addr.kind is Kind.TRAFFIC:
            self.emit("traffic.changed", str(addr), {"endpoint": addr.name, **desired.spec, **facts})

    def set_status(self, address: Address, status: str, provenance: dict[str, Any], apply_id: str | None,
                   origin: str) -> None:
        with self._writing() as conn:
            row = _find(conn, address)
            if row is None:
                raise NotFoundError(f"{address} does not exist in the workspace")
            merged = {**db.loads(row.provenance, f"provenance of {address}"), **provenance}
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
        if address.kind is Kind.TRAFFIC and self.deployer is not None:
            self.deployer.controller.put_endpoint(self.deployer.endpoint_config(address.name, traffic_spec=spec))
        with self._writing() as conn:
            row = _find(conn, address)
            if row is None:
                raise NotFoundError(f"{address} does not exist in the workspace")
            conn.execute(update(db.resources).where(db.resources.c.id == row.id).values(
                spec=canonical_json(spec), spec_hash=spec_hash, updated_at=now()))
            _log(conn, None, address, "update", "cli", row.spec_hash, spec_hash, row.source_file, provenance)
            _bump_serial(conn)
        if address.kind is Kind.TRAFFIC:
            self.emit("traffic.changed", str(address), {"endpoint": address.name, **spec, "outside_git": True,
                                                         **provenance})

    def delete(self, address: Address, provenance: dict[str, Any], apply_id: str | None, origin: str) -> None:
        if address.kind in SERVED and self.deployer is not None:
            self.deployer.before_delete(address)
        with self._writing() as conn:
            row = _find(conn, address)
            if row is not None:
                conn.execute(delete(db.asset_files).where(db.asset_files.c.resource_id == row.id))
                conn.execute(delete(db.tags).where(db.tags.c.resource_id == row.id))
                conn.execute(delete(db.resources).where(db.resources.c.id == row.id))
                _log(conn, apply_id, address, "delete", origin, row.spec_hash, None, row.source_file, provenance)
            if apply_id:
                _journal(conn, apply_id, address, "delete", "end")
            _bump_serial(conn)

    def record_blobs(self, digests: list[str]) -> None:
        """Note files about to be stored, before they are copied: garbage collection may delete only these."""
        if digests:
            with self._writing() as conn:
                _record_blobs(conn, set(digests))

    def collect_garbage(self) -> int:
        """Remove stored files that this store recorded and nothing refers to any more (left by interrupted
        applies and runs). Files it never recorded are never touched; a store made by this process has
        nothing to judge yet. Call under the lock."""
        if self.new_store or not self._exists():
            return 0
        with self._errors(), self.engine.connect() as conn:
            referenced = _referenced(conn)
            recorded = {r.sha256 for r in conn.execute(select(db.blobs.c.sha256))}
        removed = self.artifacts.remove(recorded - referenced)
        if removed:
            with self._writing() as conn:
                for chunk in _chunks(sorted(removed), 500):
                    conn.execute(delete(db.blobs).where(db.blobs.c.sha256.in_(chunk)))
        return len(removed) + self.artifacts.remove_interrupted_copies()


def _referenced(conn: Connection) -> set[str]:
    """Every stored file some resource, run or reuse-cache entry refers to."""
    referenced = {r.sha256 for r in conn.execute(select(db.asset_files.c.sha256))}
    for table in (db.step_cache, db.run_steps, db.runs):  # pipeline outputs, reused and recorded
        for (text,) in conn.execute(select(table.c.outputs)):
            for record in db.loads(text, f"{table.name}.outputs").values():
                referenced.update(sha for _, sha, _ in record.get("files", []))
    return referenced


def _record_blobs(conn: Connection, digests: set[str]) -> None:
    have = {r.sha256 for chunk in _chunks(sorted(digests), 500)
            for r in conn.execute(select(db.blobs.c.sha256).where(db.blobs.c.sha256.in_(chunk)))}
    fresh = sorted(digests - have)
    if fresh:
        stamp = now()
        conn.execute(insert(db.blobs), [{"sha256": d, "recorded_at": stamp} for d in fresh])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def latest_outputs(conn: Connection, job: str | None = None) -> JobOutputs:
    """Outputs of the latest completed run of each pipeline job (or of one)."""
    q = select(db.runs.c.id, db.runs.c.pipeline, db.runs.c.outputs).where(db.runs.c.status == "completed")
    if job is not None:
        q = q.where(db.runs.c.pipeline == job)
    out: JobOutputs = {}
    for row in conn.execute(q.order_by(db.runs.c.finished_at)):
        outputs = {name: tuple(ArtifactFile(rel, sha, size) for rel, sha, size in rec.get("files", []))
                   for name, rec in db.loads(row.outputs, f"mg_runs.outputs of run {row.id}").items()}
        out[row.pipeline] = (row.id, outputs)
    return out


def _find(conn: Connection, addr: Address) -> Any:
    return conn.execute(select(db.resources).where(
        db.resources.c.kind == addr.kind.value, db.resources.c.name == addr.name,
        db.resources.c.version == (addr.version or ""))).first()


def _to_actual(row: Any, files: tuple[ArtifactFile, ...]) -> ActualResource:
    address = Address(Kind(row.kind), row.name, row.version or None)
    where = f"the row of {address}"
    return ActualResource(
        address=address,
        spec=db.loads(row.spec, f"mg_resources.spec of {where}"), derived=db.loads(row.derived, f"derived of {where}"),
        content_hash=row.content_hash, spec_hash=row.spec_hash,
        applied_spec=db.loads(row.applied_spec, f"applied_spec of {where}") if row.applied_spec else None,
        applied_hash=row.applied_hash, status=row.status, managed=bool(row.managed), source_file=row.source_file,
        created_at=row.created_at, updated_at=row.updated_at,
        provenance=db.loads(row.provenance, f"provenance of {where}"),
        schema_name=row.schema_name, files=files)


def _bump_serial(conn: Connection) -> None:
    conn.execute(update(db.serial).where(db.serial.c.id == 1).values(value=db.serial.c.value + 1))


def _bump_counter(conn: Connection, addr: Address, version: int) -> None:
    current = conn.execute(select(db.counters.c.last).where(
        db.counters.c.kind == addr.kind.value, db.counters.c.name == addr.name)).scalar()
    if current is None:
        conn.execute(insert(db.counters).values(kind=addr.kind.value, name=addr.name, last=version))
    elif version > current:
        conn.execute(update(db.counters).where(db.counters.c.kind == addr.kind.value,
                                               db.counters.c.name == addr.name).values(last=version))


def _log(conn: Connection, apply_id: str | None, addr: Address, action: str, origin: str, before: str | None,
         after: str | None, source_file: str | None, provenance: dict[str, Any]) -> None:
    conn.execute(insert(db.changes).values(
        apply_id=apply_id, at=now(), kind=addr.kind.value, name=addr.name, version=addr.version or "",
        action=action, origin=origin, before_hash=before, after_hash=after, source_file=source_file,
        provenance=canonical_json(provenance)))


def _journal(conn: Connection, apply_id: str, addr: Address, action: str, *phases: str, detail: str = "") -> None:
    stamp = now()
    conn.execute(insert(db.journal), [{"apply_id": apply_id, "at": stamp, "address": str(addr), "action": action,
                                       "phase": phase, "detail": detail} for phase in phases])


def open_workspace(path: Path, database: str | None = None) -> LocalBackend:
    return LocalBackend(path, database)


def count_resources(backend: LocalBackend) -> int:
    with backend.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.resources)).scalar_one())
