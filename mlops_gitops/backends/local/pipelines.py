"""Pipeline jobs on the local workspace (an effect): resolve the YAML into steps, run them, record them.

Resolution reads components, environments and data assets from the workspace, or from the tree when
they are not applied yet (`job run` before `apply`, and plan previews). Runs, their steps and the reuse
cache are kept by RunRecords; step outputs go to the content-addressed store.
"""

from __future__ import annotations

import secrets
import shlex
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import notify
from mlops_gitops.backends.local.environments import EnvResolver
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.job_images import JobImages
from mlops_gitops.backends.local.registration import register_logged_models
from mlops_gitops.backends.local.remote import RemoteInputs
from mlops_gitops.backends.local.runs import RunRecords
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import UnsafePathError, safe_join
from mlops_gitops.hashing import canonical_json, path_manifest
from mlops_gitops.runtime.containers import Engine
from mlops_gitops.runtime.pipelines.runner import OutputRecord, PipelineRunner, RunResult
from mlops_gitops.runtime.pipelines.steps import FileEntry, Input, Pipeline, PipelineError, Step, manifest_digest
from mlops_gitops.runtime.remote import Datastore, RemoteError, is_remote_input, shown
from mlops_gitops.spec import compiler
from mlops_gitops.state import ArtifactFile, DesiredResource


@dataclass
class StepPreview:
    step: str
    action: str  # run | reuse
    reason: str


def _entries(files: list[ArtifactFile], prefix: str, read: Any) -> tuple[FileEntry, ...]:
    return tuple(FileEntry(f.rel[len(prefix):], f.sha256, f.size, read(f.sha256))
                 for f in files if f.rel.startswith(prefix))


class PipelineResolver:
    """YAML of a pipeline job -> runtime.pipelines.Pipeline, through the one pipeline compiler."""

    def __init__(self, store: LocalStore, hooks: Hooks, pending: dict[Address, DesiredResource] | None = None,
                 preview: bool = False, datastores: dict[str, Datastore] | None = None) -> None:
        self.store = store
        self.hooks = hooks
        self.preview = preview
        self.envs = EnvResolver(store, hooks, pending, preview)
        self.remote = RemoteInputs(store, datastores or {}, hooks)

    def resolve(self, name: str, spec: dict[str, Any], derived: dict[str, Any], files: list[ArtifactFile],
                source_file: str = "") -> Pipeline:
        if spec.get("type", "command") == "command":  # a command job: a pipeline of one step, "main"
            single = self.resolve(name, *_as_pipeline(spec, derived, files), source_file)
            single.outputs = {out: ("main", out) for out in spec.get("outputs") or {}}
            single.notification = dict(spec.get("notification_setting") or {})
            return single
        refs: dict[str, str] = derived.get("refs") or {}
        # files and references of the job ("") and of each pipeline component its steps expand
        scopes: dict[str, tuple[list[ArtifactFile], dict[str, str]]] = {"": (files, refs)}

        def find(step_name: str, step: dict[str, Any], within: compiler.Component | None) -> compiler.Component:
            scope = within.label if within is not None else ""
            key = f"jobs.{step_name}.component" if step_name else "component"  # "": the job's own `component:`
            ref = scopes[scope][1].get(key)
            if ref is None:
                raise PipelineError(f"step '{step_name}': component {step['component']!r} cannot be found")
            comp_name, _, version = ref.partition(":")
            looked = self.envs.lookup(Address(Kind.COMPONENT, comp_name, version))
            if looked is None:
                raise PipelineError(f"step '{step_name}': component {ref} is neither in the workspace nor in the tree")
            comp_spec, comp_files, comp_refs = looked
            scopes[f"component:{ref}"] = (comp_files, comp_refs)
            return compiler.Component(comp_spec, f"component:{ref}")

        compiled = compiler.compile_pipeline(name, spec, find)
        if compiled.not_run:
            step_name, step_type = next(iter(compiled.not_run.items()))
            raise PipelineError(f"step '{step_name}' is of type {step_type}, which the local workspace does not run "
                                "(validate warns of it as STEP001): run this pipeline on Azure ML, or make the step "
                                "a command step")
        if compiled.problems:
            first = compiled.problems[0]
            raise PipelineError(f"{first.code}: {first.message}")
        settings = compiled.settings
        pipeline = Pipeline(name, {}, force_rerun=bool(settings.get("force_rerun")), source_file=source_file,
                            outputs=dict(compiled.outputs),
                            continue_on_step_failure=bool(settings.get("continue_on_step_failure")),
                            notification=dict(spec.get("notification_setting") or {}))
        azure_only = [k for k in ("default_compute", "default_datastore") if settings.get(k)]
        if azure_only and not self.preview:
            verbs = "names an Azure resource and does" if len(azure_only) == 1 else "name Azure resources and do"
            self.hooks.warn(f"{source_file or name}: settings.{' and settings.'.join(azure_only)} {verbs} not "
                            "apply to the local workspace")
        for step_name, cstep in compiled.steps.items():  # a registered component's files: its scope
            pipeline.steps[step_name] = self._step(name, cstep, scopes, scopes.get(cstep.component.label))
        pipeline.order()  # the compiler has already refused a cycle
        return pipeline

    def _step(self, pipeline: str, cstep: compiler.CompiledStep, scopes: dict[str, tuple[list[ArtifactFile],
              dict[str, str]]], component: tuple[list[ArtifactFile], dict[str, str]] | None) -> Step:
        """One step; `scopes` are the files and references of the job ("") and of each pipeline component."""
        step, comp, name, local = cstep.spec, cstep.component.spec, cstep.name, cstep.local or cstep.name
        files, refs = scopes[cstep.owner.label if cstep.owner is not None else ""]
        if component is not None:  # a registered (or pending) component: its own files and references
            comp_files, comp_refs = component
            code_prefix, env_prefix, env_ref = "code/", "environment.", comp_refs.get("environment")
        elif str(step.get("type", "")).lower() == "parallel":  # its task: the entry script's code and environment
            comp_files = files
            code_prefix, env_prefix = f"jobs.{local}.task.code/", f"jobs.{local}.task.environment."
            env_ref = refs.get(f"jobs.{local}.task.environment")
            comp = {**comp, "environment": (step.get("task") or {}).get("environment"),
                    "command": parallel_command(name, step)}
        else:  # an inline command: the job's files, keyed under the step
            comp_files = files
            code_prefix, env_prefix = f"jobs.{local}.code/", f"jobs.{local}.environment."
            env_ref = refs.get(f"jobs.{local}.environment")
        env = self.envs.source(step.get("environment") or comp.get("environment"), env_ref, comp_files,
                               env_prefix, safe_join(self.store.path / "pipelines", pipeline, name))
        timeout = ((step.get("limits") or {}).get("timeout")) or None
        code = _entries(comp_files, code_prefix, self.envs.reader(comp_files))
        if component is not None:
            code = _with_includes(name, comp, code, comp_files, self.envs.reader(comp_files))
        runtime_step = Step(
            name=name, command=str(step.get("command") or comp.get("command") or ""),
            code=code,
            env_key=env.key if env else "host", env=env,
            environment_variables={str(k): str(v) for k, v in (step.get("environment_variables") or {}).items()},
            deterministic=bool(comp.get("is_deterministic", True)), timeout_s=int(timeout) if timeout else None,
            component=cstep.component.label, outputs=dict(cstep.outputs))
        if not runtime_step.command:
            raise PipelineError(f"step '{name}' has no command")
        for port, (type_, source) in cstep.inputs.items():
            runtime_step.inputs[port] = self._input(scopes, name, port, type_, source)
        return runtime_step

    def _input(self, scopes: dict[str, tuple[list[ArtifactFile], dict[str, str]]], step: str, port: str, type_: str,
               source: compiler.Source) -> Input:
        if isinstance(source, compiler.Literal):
            return Input("literal", type_, source.value)
        if isinstance(source, compiler.Upstream):
            return Input("output", type_, step=source.step, output=source.output)
        files, refs = scopes[source.owner]  # data is given where it is written: the job, or a pipeline component
        ref = refs.get(f"{source.loc}.path")
        if ref is not None:
            name, _, version = ref.partition(":")
            found = self.envs.lookup(Address(Kind.DATA, name, version))
            if found is None:
                raise PipelineError(f"step '{step}': data asset {ref} is not registered")
            data_spec, data_files = found[0], found[1]
            if not data_files and is_remote_input(str(data_spec.get("path", ""))):  # an asset that names a URL
                return self._remote(step, port, type_, str(data_spec["path"]), f"data:{ref}")
            return Input("data", type_, files=_entries(data_files, "", self.envs.reader(data_files)),
                         origin=f"data:{ref}")
        path = str(source.given.get("path"))
        if is_remote_input(path):
            return self._remote(step, port, type_, path, shown(path))
        local = _entries(files, f"{source.loc}.path/", self.envs.reader(files))
        if not local:
            raise PipelineError(f"step '{step}': input '{port}' points at {source.given.get('path')}, which cannot "
                                "be read here")
        return Input("data", type_, files=local, origin=str(source.given.get("path")))

    def _remote(self, step: str, port: str, type_: str, url: str, origin: str) -> Input:
        if self.preview:  # plan reads no network: the step is shown as one that runs
            return Input("data", type_, files=(), origin=origin)
        try:
            return Input("data", type_, files=self.remote.files(url, type_), origin=origin)
        except RemoteError as exc:
            raise PipelineError(f"step '{step}': input '{port}': {exc}") from None


def parallel_command(step_name: str, step: dict[str, Any]) -> str:
    """A `type: parallel` step as the command the runner runs: the mini-batch engine's driver, with the
    step's settings; its ${{inputs.…}} and ${{outputs.…}} are bound like any command's."""
    task = step.get("task") or {}
    if str(task.get("type", "run_function")) != "run_function" or not task.get("entry_script"):
        raise PipelineError(f"step '{step_name}': a parallel step's task needs type run_function and an entry_script")
    if not step.get("input_data"):
        raise PipelineError(f"step '{step_name}': a parallel step needs input_data (${{{{inputs.NAME}}}})")
    retry = step.get("retry_settings") or {}
    args = [sys.executable, "-m", "mlops_gitops.runtime.batch.parallel", "--entry-script", str(task["entry_script"]),
            "--mini-batch-size", str(step.get("mini_batch_size", 1)),
            "--workers-per-instance", str(step.get("max_concurrency_per_instance", 1)),
            "--instance-count", str((step.get("resources") or {}).get("instance_count", 1)),
            "--error-threshold", str(step.get("error_threshold", -1)),
            "--mini-batch-error-threshold", str(step.get("mini_batch_error_threshold", -1)),
            "--max-retries", str(retry.get("max_retries", 3)), "--timeout", str(retry.get("timeout", 60)),
            "--logging-level", str(step.get("logging_level", "INFO"))]
    bound = ["--input-data", str(step["input_data"])]  # placeholders: quoted by the renderer, not here
    if task.get("append_row_to"):
        bound += ["--append-row-to", str(task["append_row_to"])]
    program = str(task.get("program_arguments") or "").strip()
    return " ".join([*map(shlex.quote, args), *bound, "--", program]).strip()


def _with_includes(step: str, comp: dict[str, Any], code: tuple[FileEntry, ...], files: list[ArtifactFile],
                   read: Any) -> tuple[FileEntry, ...]:
    """A component's code with its additional_includes beside it, as Azure lays them out: each file or
    folder under its own name at the top of the code folder (a name the code already has is an error)."""
    out = list(code)
    taken = {f.rel.split("/", 1)[0]: "the component's code" for f in code}
    for i, include in enumerate(comp.get("additional_includes") or []):
        entries = _entries(files, f"additional_includes.{i}/", read)
        name = str(include).rstrip("/").rsplit("/", 1)[-1]
        if not entries:
            raise PipelineError(f"step '{step}': additional_includes entry {include!r} cannot be read here")
        single_file = len(entries) == 1 and entries[0].rel == name
        if name in taken:
            raise PipelineError(f"step '{step}': additional_includes entry {include!r} is named like a file or "
                                f"folder of {taken[name]} ({name}); Azure refuses the same clash")
        taken[name] = f"additional_includes entry {include!r}"
        out += [e if single_file else replace(e, rel=f"{name}/{e.rel}") for e in entries]
    return tuple(out)


def _as_pipeline(spec: dict[str, Any], derived: dict[str, Any],
                 files: list[ArtifactFile]) -> tuple[dict[str, Any], dict[str, Any], list[ArtifactFile]]:
    """A command job re-addressed as the single step `main` of a pipeline (its refs and files re-keyed)."""
    keys = ("command", "code", "environment", "environment_variables", "limits", "inputs", "outputs")
    step = {k: spec[k] for k in keys if k in spec}
    refs = {f"jobs.main.{k}": v for k, v in (derived.get("refs") or {}).items()}
    moved = [replace(f, rel=f"jobs.main.{f.rel}") for f in files]
    return {"type": "pipeline", "jobs": {"main": step}}, {"refs": refs}, moved


class LocalRunStore:
    """The runner's RunStore: records through RunRecords, outputs into the content-addressed store."""

    def __init__(self, store: LocalStore, records: RunRecords, envs: EnvResolver, run_id: str,
                 images: JobImages | None = None) -> None:
        self.store = store
        self.records = records
        self.envs = envs
        self.run_id = run_id
        self.images = images  # runtime: container — steps run in their environments' images

    def cached(self, key: str) -> tuple[dict[str, OutputRecord], dict[str, Any], str] | None:
        return self.records.cached(key)

    def store_outputs(self, step: Step, paths: dict[str, Path]) -> dict[str, OutputRecord]:
        out: dict[str, OutputRecord] = {}
        try:  # an output may not link out of the step's outputs folder, nor be a device or FIFO
            manifests = {name: path_manifest(path, path.parent, "the step's outputs")
                         if path.exists() or path.is_symlink() else [] for name, path in paths.items()}
        except UnsafePathError as exc:
            raise PipelineError(f"step '{step.name}': {exc}") from None
        # recorded and leased before they are copied: garbage collection keeps them until the run's end
        self.store.record_blobs([digest for m in manifests.values() for _, digest, _ in m], lease=self.run_id)
        for name, path in paths.items():
            base = path if path.is_dir() else path.parent
            entries = []
            for rel, digest, size in manifests[name]:
                self.store.artifacts.put(base / rel, digest)
                entries.append(FileEntry(rel, digest, size, self.store.artifacts.path(digest)))
            out[name] = (step.outputs[name], tuple(entries))
        return out

    def save_cache(self, key: str, step: str, outputs: dict[str, OutputRecord], metrics: dict[str, Any]) -> None:
        self.records.save_cache(key, self.run_id, step, outputs, metrics)

    def python_for(self, step: Step) -> str:
        return self.envs.python(step.env)

    def container_for(self, step: Step) -> tuple[Engine, str] | None:
        if self.images is None:
            return None
        return self.images.engine, self.images.image_for(step.env)

    def step_event(self, step: str, status: str, **fields: Any) -> None:
        self.records.step_event(self.run_id, step, status, **fields)

    def cancel_requested(self) -> bool:
        return self.records.cancel_requested(self.run_id)


def new_run_id(pipeline: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{pipeline}-{stamp}-{secrets.token_hex(2)}"


def preview(records: RunRecords, pipeline: Pipeline, force: bool = False) -> list[StepPreview]:
    """What a run would do now: reuse each step whose key has outputs recorded, run the others."""
    known: dict[tuple[str, str], str] = {}
    out = []
    runs: set[str] = set()
    for name in pipeline.order():
        step = pipeline.steps[name]
        after = sorted(u for u in step.upstream if u in runs)
        if after:
            runs.add(name)
            out.append(StepPreview(name, "run", f"after {', '.join(after)}; reused if their outputs come out the same"))
            continue
        key = step.key({k: v for k, v in known.items() if k[0] in step.upstream})
        hit = None if (force or pipeline.force_rerun or not step.deterministic) else records.cached(key)
        if hit is None:
            runs.add(name)
            reason = ("forced" if force or pipeline.force_rerun else "not deterministic" if not step.deterministic
                      else _what_changed(records, pipeline.name, step))
            out.append(StepPreview(name, "run", reason))
        else:
            for port, (_, files) in hit[0].items():
                known[(name, port)] = manifest_digest(files)
            out.append(StepPreview(name, "reuse", f"unchanged since {hit[2]}"))
    return out


def _what_changed(records: RunRecords, pipeline: str, step: Step) -> str:
    """Why a step's key is new, against its last successful run in this workspace."""
    last = records.last_success(pipeline, step.name)
    if last is None:
        return "never run in this workspace"
    changes = []
    before, now_inputs = last.inputs, describe_inputs(step)
    for port in sorted(set(before) | set(now_inputs)):
        old, new = before.get(port), now_inputs.get(port)
        if old != new:
            if old and new and "data" in old and "data" in new and old["data"] != new["data"]:
                changes.append(f"input {port}: {old['data']} -> {new['data']}")
            elif old and new and "value" in old and "value" in new:
                changes.append(f"input {port}: {old['value']!r} -> {new['value']!r}")
            else:
                changes.append(f"input {port} changed")
    if last.component != step.component:
        changes.append(f"{last.component or 'component'} -> {step.component}")
    if last.environment.get("digest", "host") != step.env_key:
        changes.append("environment changed")
    if not changes:
        changes.append("command, code or outputs changed")
    return "; ".join(changes)


class PipelineRun:
    """One run of a pipeline in the workspace: recorded at its start (with leases on the stored files it reads),
    executed, recorded at its end. `job run` holds the workspace lock only for start() and finish()."""

    def __init__(self, store: LocalStore, hooks: Hooks, pipeline: Pipeline, snapshot: dict[str, Any],
                 apply_id: str | None = None, images: JobImages | None = None) -> None:
        self.store, self.hooks, self.pipeline, self.snapshot = store, hooks, pipeline, snapshot
        self.apply_id = apply_id
        self.images = images
        self.records = RunRecords(store)
        self.run_id = new_run_id(pipeline.name)

    def start(self) -> None:
        pipeline = self.pipeline
        self.store.ensure()
        order = pipeline.order()
        self.records.start(self.run_id, pipeline.name, pipeline.source_file, self.apply_id,
                           {**self.snapshot, **describe(pipeline)}, [
                               {"step": name, "component": pipeline.steps[name].component,
                                "inputs": canonical_json(describe_inputs(pipeline.steps[name])),
                                "environment": canonical_json(describe_env(pipeline.steps[name]))}
                               for name in order], leases=files_read(pipeline))

    def execute(self, force_rerun: bool = False, parallelism: int = 4, log: Any = None) -> RunResult:
        run_dir = safe_join(self.store.path / "runs", self.run_id)
        run_store = LocalRunStore(self.store, self.records, EnvResolver(self.store, self.hooks), self.run_id,
                                  self.images)
        runner = PipelineRunner(self.pipeline, run_store, run_dir, parallelism, force_rerun,
                                log=log or self.hooks.note)
        try:
            return runner.run()
        except BaseException:
            self.records.finish(self.run_id, "failed", {}, "interrupted")
            raise

    def finish(self, result: RunResult) -> None:
        failed = [f"{name}: {r.message}" for name, r in result.steps.items() if r.status == "failed"]
        self.records.finish(self.run_id, result.status, result.outputs, "\n".join(failed))
        for address in register_logged_models(self.store, self.pipeline.name, self.run_id, result, self.hooks.note):
            self.hooks.emit("model.registered", str(address), {"name": address.name, "version": address.version,
                                                               "run": self.run_id, "by": "mlflow.register_model"})
        firsts = [f.splitlines()[0] for f in failed]
        self.hooks.emit("job.completed" if result.status == "completed" else "job.failed", f"run:{self.run_id}", {
            "job": self.pipeline.name, "status": result.status,
            "steps": {n: r.status for n, r in result.steps.items()},
            "metrics": {f"{n}.{k}": v for n, r in result.steps.items() for k, v in r.metrics.items()},
            "git.commit": self.snapshot.get("git.commit"), "failures": firsts})
        notify.job_ended(self.hooks, self.pipeline.name, self.run_id, result.status, firsts,
                         self.pipeline.notification, self.snapshot.get("schedule.occurrence"))


def files_read(pipeline: Pipeline) -> set[str]:
    """The content hashes of every file a pipeline's steps read: their code and their data inputs."""
    return {f.sha256 for step in pipeline.steps.values()
            for f in (*step.code, *(e for inp in step.inputs.values() for e in inp.files))}


def run_pipeline(store: LocalStore, hooks: Hooks, pipeline: Pipeline, snapshot: dict[str, Any],
                 force_rerun: bool = False, parallelism: int = 4, apply_id: str | None = None,
                 log: Any = None, images: JobImages | None = None) -> tuple[str, RunResult]:
    """Run (or reuse) every step, recording the run as it goes; returns the run ID and the result."""
    run = PipelineRun(store, hooks, pipeline, snapshot, apply_id, images)
    run.start()
    result = run.execute(force_rerun, parallelism, log)
    run.finish(result)
    return run.run_id, result


def describe_inputs(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, inp in step.inputs.items():
        if inp.kind == "literal":
            out[name] = {"value": inp.value}
        elif inp.kind == "data":
            out[name] = {"data": inp.origin, "sha256": manifest_digest(inp.files)}
        else:
            out[name] = {"from": f"{inp.step}.outputs.{inp.output}"}
    return out


def describe_env(step: Step) -> dict[str, Any]:
    env = step.env
    if env is None:
        return {"python": "host"}
    return {"label": env.label, "digest": env.key,
            "requirements": list(env.resolved.requirements) if env.resolved else [], "image": env.image}


def describe(pipeline: Pipeline) -> dict[str, Any]:
    return {"parameters": {f"{s}.{n}": i.value for s, step in pipeline.steps.items()
                           for n, i in step.inputs.items() if i.kind == "literal"},
            "code": {s: manifest_digest(step.code) for s, step in pipeline.steps.items()}}


def require_pipeline(spec: dict[str, Any], label: str) -> None:
    if spec.get("type", "command") not in ("pipeline", "command"):
        raise WorkspaceError(f"{label} is a {spec.get('type')} job; `job run` runs command and pipeline jobs")
