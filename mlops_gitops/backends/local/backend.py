"""LocalBackend: the local workspace's store and effects, joined. It plans nothing and orders nothing.

A write (`put`) first lets the effects do what the resource needs — files from a run or from DVC
stored, a pipeline run, a deployment made ready — and records it in the store only once all of that
succeeded; a removal lets the serving effect stop what it served before the store forgets it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_gitops import progress
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.base import StepPreview
from mlops_gitops.backends.local import db
from mlops_gitops.backends.local.datafetch import with_dvc_data
from mlops_gitops.backends.local.deploy import Deployer
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.hosting import LocalServing
from mlops_gitops.backends.local.registration import from_latest_run
from mlops_gitops.backends.local.runs import RunRecords
from mlops_gitops.backends.local.serving import ServingController
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import GitOpsError, LockHeldError, WorkspaceError
from mlops_gitops.events.model import Event
from mlops_gitops.events.sinks import Dispatcher, Sink
from mlops_gitops.fsutil import safe_join
from mlops_gitops.kinds import SERVED
from mlops_gitops.redact import Masker
from mlops_gitops.runtime.pipelines.runner import RunResult
from mlops_gitops.runtime.serving.config import DeploymentConfig
from mlops_gitops.spec.references import resolved_job_output
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
from mlops_gitops.textsafe import defuse_text

if TYPE_CHECKING:  # the image builder (jinja2) is imported only where images are built
    from mlops_gitops.backends.local.analytics import Analytics
    from mlops_gitops.backends.local.batch import BatchJobResult
    from mlops_gitops.backends.local.collected import Collected
    from mlops_gitops.backends.local.job_images import JobImages
    from mlops_gitops.backends.local.monitors import Monitors
    from mlops_gitops.backends.local.schedules import Schedules
    from mlops_gitops.events.mail import SmtpSettings
    from mlops_gitops.runtime.packaging import ImageRecipe
    from mlops_gitops.runtime.remote import Datastore

# how long a finished `job run` waits for an apply to release the lock before recording its end without it
FINISH_LOCK_WAIT_S = 120.0
RUNNABLE = ("pipeline", "command")  # job types the local workspace runs when applied


def _warn(message: str) -> None:
    with progress.current().writing():
        print(defuse_text(f"Warning: {message}"), file=sys.stderr, flush=True)


def _note(message: str) -> None:
    with progress.current().writing():
        print(defuse_text(message), file=sys.stderr, flush=True)


class LocalBackend:
    name = "local"

    def __init__(self, path: Path, database: str | None = None, warn: Callable[[str], None] = _warn,
                 runtime: str = "none", port: int = 0, base_image: str | None = None,
                 sinks: list[Sink] | None = None, source: str | None = None, tree_root: Path | None = None,
                 artifacts: str | None = None, where: Callable[[str], str] = lambda key: key,
                 serving: str = "apply", datastores: dict[str, Datastore] | None = None,
                 endpoint_ports: dict[str, int] | None = None, smtp: SmtpSettings | None = None,
                 host_env: dict[str, str] | None = None) -> None:
        if runtime not in ("process", "container", "none"):
            raise WorkspaceError(f"unknown runtime '{runtime}': use process, container or none")
        if serving not in ("apply", "hosts"):
            raise WorkspaceError(f"unknown serving '{serving}': use apply or hosts")
        self.serving_mode = serving  # hosts: applies record endpoints; `serve --follow` hosts converge to them
        self.store = LocalStore(path, database, artifacts, where("artifacts"))
        self.runtime = runtime  # process | container: online endpoints are served; none: recorded only
        self.port = port
        self.endpoint_ports = endpoint_ports or {}  # a port of its own per endpoint (Triton's clients)
        self.base_image = base_image
        self.tree_root = tree_root  # the repository tree being applied (run snapshots diff it, DVC fetches)
        self.source = source or f"mlops-gitops://local/{path.name}"  # CloudEvents source of its events
        self.dispatcher = Dispatcher(sinks or [], path / "events" / "dead-letter.jsonl", lambda m: self.hooks.warn(m))
        self.smtp = smtp  # mlops.yaml's mail server, for alert and job notification emails
        self.host_env = host_env or {}  # what the endpoint host needs to fire schedules as this project would
        self.hooks = Hooks(note=_note, warn=warn, emit=self.emit, mail=self.mail)
        self._runs = LocalRuns(self.store, self.hooks, executes=runtime != "none", datastores=datastores,
                               containers=runtime == "container", base_image=base_image)
        self._deployer: Deployer | None = None
        self._serving: LocalServing | None = None

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def location(self) -> str:
        url = self.store.url
        return str(self.path) if url.startswith("sqlite:") else f"{self.path} ({db.mask_url(url)})"

    @property
    def runs(self) -> LocalRuns:
        return self._runs

    @property
    def serving(self) -> LocalServing:
        if self._serving is None:
            deployer = self.deployer

            def keys_changed(endpoint: str) -> None:
                if deployer is not None:
                    deployer.controller.put_endpoint(deployer.endpoint_config(endpoint))

            controller = deployer.controller if deployer is not None else ServingController(self.path)
            self._serving = LocalServing(self.store, controller, serves=deployer is not None,
                                         on_key_change=None if self.serving_mode == "hosts" else keys_changed,
                                         deployer=deployer, by_hosts=self.serving_mode == "hosts")
        return self._serving

    @property
    def schedules(self) -> Schedules:
        """Schedules that fire: due occurrences claimed once and run (`schedule run-due`, the endpoint host)."""
        from mlops_gitops.backends.local.schedules import Schedules

        return Schedules(self.store, self.hooks, self._runs.datastores)

    @property
    def monitors(self) -> Monitors:
        """Monitors: a schedule's create_monitor run now (`monitor run`), recorded, reported."""
        from mlops_gitops.backends.local.monitors import Monitors

        return Monitors(self.store, self.hooks)

    @property
    def collected(self) -> Collected:
        """What the endpoint host collected from deployments with a data_collector (Parquet files)."""
        from mlops_gitops.backends.local.collected import Collected

        return Collected(self.store.path / "collected")

    @property
    def analytics(self) -> Analytics:
        """A consistent Parquet snapshot of jobs, metrics, predictions, monitor results and collected data."""
        from mlops_gitops.backends.local.analytics import Analytics

        return Analytics(self.store, self.collected)

    @property
    def packager(self) -> LocalBackend:
        return self

    @property
    def warn(self) -> Callable[[str], None]:
        return self.hooks.warn

    @warn.setter
    def warn(self, value: Callable[[str], None]) -> None:
        self.hooks.warn = value

    @property
    def note(self) -> Callable[[str], None]:
        return self.hooks.note

    @note.setter
    def note(self, value: Callable[[str], None]) -> None:
        self.hooks.note = value

    @property
    def deployer(self) -> Deployer | None:
        """What serves online endpoints, or None when this workspace only records them."""
        if self.runtime == "none":
            return None
        if self._deployer is None:
            controller = ServingController(self.path, self.port, metrics_key=self.store.metrics_key,
                                           store_env={**self.store.locations(), **self.host_env},
                                           endpoint_ports=self.endpoint_ports)
            self._deployer = Deployer(self.store, self.hooks, controller, self.runtime, self.base_image)
        return self._deployer

    @property
    def pusher(self) -> Deployer | None:
        """What an apply drives directly (serving: apply), or None when hosts follow the workspace instead."""
        return self.deployer if self.serving_mode == "apply" else None

    # -- the store, as the Backend protocol reads it ----------------------------------------------

    def has_state(self) -> bool:
        return self.store.has_state()

    def ensure(self) -> None:
        self.store.ensure()

    def read(self) -> Snapshot:
        return self.store.read()

    def serial(self) -> int:
        return self.store.serial()

    def get(self, address: Address) -> ActualResource | None:
        return self.store.get(address)

    def change_log(self, address: Address | None = None, source_file: str | None = None) -> list[ChangeRecord]:
        return self.store.change_log(address, source_file)

    def search_tags(self, key: str, value: str | None) -> list[Address]:
        return self.store.search_tags(key, value)

    def masker(self) -> Masker:
        return self.store.masker()

    def export_files(self, resource: ActualResource, dest: Path) -> Path:
        """A version's files under dest/<name>/<version>/ (links refused: names come from the store)."""
        target = dest / resource.address.name / (resource.address.version or "")
        for f in resource.files:
            self.store.artifacts.export(f.sha256, safe_join(target, f.rel, what="file") if f.rel else target)
        return target

    def artifact_path(self, sha256: str) -> Path:
        return self.store.artifact_path(sha256)

    # -- the lock, applies and the journal ----------------------------------------------------------

    def lock(self, operation: str, reason: str = "", timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        return self._runs._locked(operation, reason, timeout)

    def lock_holder(self) -> LockInfo | None:
        return self.store.lock_holder()

    def force_unlock(self, lock_id: str) -> LockInfo:
        return self.store.force_unlock(lock_id)

    def begin_apply(self, apply_id: str, who: str, source: dict[str, Any]) -> None:
        self.store.begin_apply(apply_id, who, source)

    def finish_apply(self, apply_id: str, status: str, summary: dict[str, Any]) -> None:
        self.store.finish_apply(apply_id, status, summary)

    def journal(self, apply_id: str, address: Address, action: str, phase: str, detail: str = "") -> None:
        self.store.journal(apply_id, address, action, phase, detail)

    def interrupted(self) -> list[dict[str, Any]]:
        return self.store.interrupted()

    def mark_abandoned(self, apply_id: str) -> None:
        self.store.mark_abandoned(apply_id)

    def collect_garbage(self) -> int:
        return self.store.collect_garbage()

    # -- events --------------------------------------------------------------------------------

    def emit(self, type_: str, subject: str, data: dict[str, Any]) -> Event:
        """Record a lifecycle event in the workspace and hand it to the configured sinks."""
        event = Event(type_, self.source, subject, data)
        self.store.add_event(event)
        self.dispatcher.publish(event)
        return event

    def mail(self, recipients: list[str], subject: str, body: str, about: str, html: str | None = None) -> None:
        """Send a mail through mlops.yaml's SMTP server, off the command's path (dead-lettered if undelivered)."""
        if not recipients:
            return
        if self.smtp is None:
            self.hooks.warn(f"{about}: not mailed to {', '.join(recipients)}: mlops.yaml has no smtp server "
                            "(smtp: host, sender)")
            return
        from mlops_gitops.events.mail import EmailSink, mail_event

        self.dispatcher.send(EmailSink(self.smtp), mail_event(self.source, recipients, subject, body, about, html))

    def events(self, after: int = 0, limit: int | None = None) -> list[EventRecord]:
        return [EventRecord(r.seq, r.at, r.type, r.subject, r.document) for r in self.store.events(after, limit)]

    def close(self) -> None:
        self.dispatcher.drain()
        self.store.close()

    # -- writing: the effects first, then the record ---------------------------------------------------

    def put(self, desired: DesiredResource, action: str, provenance: dict[str, Any], apply_id: str | None,
            origin: str = "apply", journal_begin: bool = False) -> ActualResource:
        """Create or update one resource (its files stored, its effects done first), atomically."""
        self.store.ensure()
        prepared = self._prepare(desired, provenance, apply_id)
        if isinstance(prepared, ActualResource):  # a pipeline's run produced what an existing version holds
            if apply_id:
                self.store.journal(apply_id, desired.address, action, "end", f"same files as {prepared.address}")
            return prepared
        desired, provenance = prepared
        written = self.store.write(desired, action, provenance, apply_id, origin, journal_begin)
        self._announce(desired, written.created, provenance)
        return written.resource

    def _prepare(self, desired: DesiredResource, provenance: dict[str, Any],
                 apply_id: str | None) -> tuple[DesiredResource, dict[str, Any]] | ActualResource:
        """Everything before the metadata write: files from a run or DVC stored, deployments made ready,
        jobs run. Raises (and writes no metadata) when any of it fails."""
        job_output = resolved_job_output((desired.derived.get("refs") or {}).get("path"))
        if job_output is not None:
            resolved, run_id = from_latest_run(self.store, desired, job_output)
            if isinstance(resolved, ActualResource):
                return resolved
            desired, provenance = resolved, {**provenance, "run.id": run_id,
                                             "run.metrics": self._runs.records.metrics(run_id)}
        desired = with_dvc_data(desired, self.tree_root, self.hooks)
        if desired.address.kind is Kind.MODEL and (desired.spec.get("x-gitops") or {}).get("convert"):
            desired, provenance = self._converted(desired, provenance)
        self.store.store_files(desired.artifacts)
        if desired.address.kind is Kind.MODEL and (desired.spec.get("x-gitops") or {}).get("explain"):
            from mlops_gitops.backends.local.importance import explained

            provenance = {**provenance, "importance": explained(self.store, self.hooks, desired)}
        addr = desired.address
        if addr.kind in SERVED and self.pusher is not None:
            try:
                self.pusher.before_put(desired)  # raises if the deployment does not become ready
            except WorkspaceError as exc:
                if addr.kind is Kind.ONLINE_DEPLOYMENT:
                    self.emit("deployment.failed", str(addr), {"error": str(exc),
                                                               "git.commit": provenance.get("git.commit")})
                raise
        if addr.kind is Kind.JOB and desired.spec.get("type", "command") in RUNNABLE and self.runtime != "none":
            provenance = {**provenance, "run.id": self._runs.run_for_apply(desired, provenance, apply_id,
                                                                           self.tree_root)}
        return desired, provenance

    def _converted(self, desired: DesiredResource,
                   provenance: dict[str, Any]) -> tuple[DesiredResource, dict[str, Any]]:
        from mlops_gitops.backends.local.conversion import converted_version

        desired, facts = converted_version(self.store, self.hooks, desired)
        return desired, {**provenance, **facts}

    def convert_model(self, address: Address, declaration: dict[str, Any], data_ref: str | None) -> dict[str, Any]:
        """`model convert`: a registered version converted and measured ad hoc; nothing is registered. The report,
        with where the converted files are."""
        from datetime import UTC, datetime

        from mlops_gitops.backends.local.conversion import Converter

        source = self.store.get(address) if self.store.has_state() else None
        if source is None or address.kind is not Kind.MODEL:
            raise WorkspaceError(f"{address} is not registered in the workspace (`mlops-gitops model list`)")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        here = safe_join(self.path / "conversions", "ad-hoc", f"{address.name}-{address.version}-{stamp}")
        done = Converter(self.store, self.hooks).convert(source, declaration, data_ref, here, check=False)
        return {**done.report, "folder": str(done.folder)}

    def _announce(self, desired: DesiredResource, created: bool, provenance: dict[str, Any]) -> None:
        addr = desired.address
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
        self.store.set_status(address, status, provenance, apply_id, origin)

    def set_spec(self, address: Address, spec: dict[str, Any], spec_hash: str, provenance: dict[str, Any]) -> None:
        """An out-of-band change (from a CLI command, not from Git): shows up as drift."""
        if address.kind is Kind.TRAFFIC and self.pusher is not None:
            self.pusher.controller.put_endpoint(self.pusher.endpoint_config(address.name, traffic_spec=spec))
        self.store.set_spec(address, spec, spec_hash, provenance)
        if address.kind is Kind.TRAFFIC:
            self.emit("traffic.changed", str(address), {"endpoint": address.name, **spec, "outside_git": True,
                                                         **provenance})

    def delete(self, address: Address, provenance: dict[str, Any], apply_id: str | None, origin: str) -> None:
        if address.kind in SERVED and self.pusher is not None:
            self.pusher.before_delete(address)
        self.store.remove(address, provenance, apply_id, origin)

    def recipe(self, deployment: ActualResource,
               base_image: str | None) -> tuple[DeploymentConfig, ImageRecipe]:
        """A deployment of the workspace as an image recipe (`package`): its files laid out, no engine needed."""
        deployer = Deployer(self.store, self.hooks, ServingController(self.path), "container",
                            base_image or self.base_image)
        cfg, env = deployer.layout(deployment)
        return cfg, deployer.recipe(cfg, env)

class LocalRuns:
    """Runs of the local workspace: records (RunRecords) and the pipeline effect that makes them."""

    def __init__(self, store: LocalStore, hooks: Hooks, executes: bool = True,
                 datastores: dict[str, Datastore] | None = None, containers: bool = False,
                 base_image: str | None = None) -> None:
        self.store = store
        self.hooks = hooks
        self.containers, self.base_image = containers, base_image  # runtime: container runs steps in images
        self.executes = executes  # runtime none: applying a job records it, nothing runs
        self.records = RunRecords(store)
        self.datastores = datastores or {}  # where azureml://datastores/… inputs are read from

    def all(self, pipeline: str | None = None) -> list[RunRecord]:
        self.reap()
        return self.records.all(pipeline)

    def get(self, run_id: str) -> RunRecord:
        self.reap()
        return self.records.get(run_id)

    def steps(self, run_id: str) -> list[StepRecord]:
        return self.records.steps(run_id)

    def step_log(self, run_id: str, step: str) -> str | None:
        log = safe_join(self.store.path / "runs", run_id, step, "log.txt")
        return log.read_text(encoding="utf-8", errors="replace") if log.exists() else None

    def cancel(self, run_id: str) -> list[str]:
        """Ask a running run to stop: its running steps get SIGTERM (their process groups); the names."""
        import os
        import signal

        run = self.records.get(run_id)
        self.records.request_cancel(run.id)
        stopped = []
        for s in self.records.steps(run.id):
            if s.status == "running" and s.pid:
                try:
                    os.killpg(s.pid, signal.SIGTERM)
                    stopped.append(s.step)
                except (ProcessLookupError, PermissionError):
                    pass
        return stopped

    def metrics_at(self, commit: str, pipeline: str | None = None) -> tuple[dict[str, Any], list[str]]:
        return self.records.metrics_at(commit, pipeline)

    def run(self, job: DesiredResource, pending: dict[Address, DesiredResource], snapshot: dict[str, Any],
            force_rerun: bool = False, parallelism: int = 4,
            log: Callable[[str], None] | None = None) -> tuple[str, RunResult]:
        """Run a job of the tree now (`job run`), resolving what it uses from the workspace or the tree.

        The workspace lock is held only to resolve and record the start, and to record the end: applies (a
        traffic hotfix included) go on while the steps run; the files the run reads or writes are leased."""
        from mlops_gitops.backends.local.pipelines import PipelineResolver, PipelineRun
        from mlops_gitops.runtime.pipelines.steps import PipelineError

        with self._locked("job run", f"start a run of {job.address.name}"):
            try:
                pipeline = PipelineResolver(self.store, self.hooks, pending, datastores=self.datastores).resolve(
                    job.address.name, job.spec, job.derived, job.artifacts, job.source_file or "")
            except PipelineError as exc:
                raise WorkspaceError(f"{job.source_file}: {exc}") from None
            run = PipelineRun(self.store, self.hooks, pipeline, snapshot, images=self._images())
            run.start()
        result = run.execute(force_rerun, parallelism, log)
        try:
            with self._locked("job run", f"record the end of run {run.run_id}", timeout=FINISH_LOCK_WAIT_S):
                run.finish(result)
        except LockHeldError as exc:  # recording the end is one transaction: safe without the lock, said once
            self.hooks.warn(f"{exc}; recording the end of run {run.run_id} without it")
            run.finish(result)
        return run.run_id, result

    def invoke_batch(self, endpoint: str, given: list[str], deployment: str | None = None,
                     output: Path | None = None, overrides: list[str] | None = None, run_id: str | None = None,
                     record_refusal: bool = False) -> BatchJobResult:
        """Start a job of a batch endpoint's deployment on `given` (paths, URLs or data assets) and run it here.

        As `job run`, the workspace lock is held only to resolve and record the start. `record_refusal`
        (a job started through the endpoint host, whose client polls it): the lock is waited for (jobs
        started at the same time queue for it), and a job that cannot start is recorded as failed with
        the reason instead of only raising."""
        from mlops_gitops.backends.local.batch import BatchJobResult, BatchJobs, is_pipeline_deployment, settings_for

        jobs = BatchJobs(self.store, self.hooks, self.datastores)
        try:
            with self._locked("batch invoke", f"start a job of batch endpoint {endpoint}",
                              timeout=FINISH_LOCK_WAIT_S if record_refusal else 0.0):
                dep = jobs.deployment(endpoint, deployment)
                if is_pipeline_deployment(dep.spec):
                    run = jobs.pipeline_run(dep, given, list(overrides or []), self._images(), run_id)
                    run.start()
                else:
                    if len(given) != 1:
                        raise WorkspaceError(f"{dep.address} is a model deployment: give one --input (a file or "
                                             "folder, a URL, or a data asset)")
                    settings = settings_for(dep, list(overrides or []))
                    inputs = jobs.resolve_input(given[0])
                    run_id = jobs.start(dep, inputs, settings, run_id)
        except GitOpsError as exc:  # nothing was recorded yet (start is the last step)
            if not record_refusal or run_id is None:
                raise
            return jobs.refuse(run_id, endpoint, deployment, str(exc))
        if not is_pipeline_deployment(dep.spec):
            assert run_id is not None  # recorded above
            return jobs.execute(run_id, dep, inputs, settings, output)
        result = run.execute(log=self.hooks.note)
        run.finish(result)
        failed = [f"step '{n}' {r.status}: {r.message}" for n, r in result.steps.items()
                  if r.status in ("failed", "cancelled")]
        done = BatchJobResult(run.run_id, result.status, message="; ".join(failed))
        if output is not None:
            done.output_files = jobs.export_outputs(result.outputs, output)
        return done

    def _images(self) -> JobImages | None:
        from mlops_gitops.backends.local.job_images import JobImages

        return JobImages(self.hooks, self.base_image) if self.containers else None

    @contextmanager
    def _locked(self, operation: str, reason: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        with self.store.lock(operation, reason, timeout, self.hooks.warn) as info:
            self.reap()
            yield info

    def reap(self) -> int:
        return self.records.reap()

    def preview(self, desired: DesiredResource, pending: dict[Address, DesiredResource]) -> StepPreview | None:
        """Which steps of a pipeline job a run would run or reuse now (for plan)."""
        if not self.executes:
            return None
        from mlops_gitops.backends.local.pipelines import PipelineResolver, preview
        from mlops_gitops.runtime.pipelines.steps import PipelineError

        try:
            pipeline = PipelineResolver(self.store, self.hooks, pending, preview=True,
                                        datastores=self.datastores).resolve(
                desired.address.name, desired.spec, desired.derived, desired.artifacts, desired.source_file)
            return [{"step": p.step, "action": p.action, "reason": p.reason} for p in preview(self.records, pipeline)]
        except (PipelineError, WorkspaceError) as exc:
            return f"cannot preview its steps: {exc}"

    def run_for_apply(self, desired: DesiredResource, provenance: dict[str, Any], apply_id: str | None,
                      tree_root: Path | None) -> str:
        """Run a pipeline job of the tree (reusing unchanged steps); raise when it does not complete."""
        from mlops_gitops.backends.local.pipelines import PipelineResolver, run_pipeline
        from mlops_gitops.runtime.pipelines.steps import PipelineError

        try:
            pipeline = PipelineResolver(self.store, self.hooks, datastores=self.datastores).resolve(
                desired.address.name, desired.spec, desired.derived, desired.artifacts, desired.source_file)
        except PipelineError as exc:
            raise WorkspaceError(f"{desired.source_file}: {exc}") from None
        snapshot: dict[str, Any] = {k: v for k, v in provenance.items() if k.startswith("git.")}
        if tree_root is not None:
            from mlops_gitops.vcs.git import uncommitted_diff

            snapshot["git.diff"] = uncommitted_diff(tree_root, [])
        run_id, result = run_pipeline(self.store, self.hooks, pipeline, snapshot, apply_id=apply_id,
                                      images=self._images())
        if result.status != "completed":
            failed = [f"step '{n}' {r.status}: {r.message}" for n, r in result.steps.items()
                      if r.status in ("failed", "cancelled")]
            raise WorkspaceError(f"run {run_id} {result.status}: " + ("; ".join(failed) or "see `job show`"))
        return run_id
