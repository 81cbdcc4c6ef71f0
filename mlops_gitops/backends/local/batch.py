"""Batch endpoints on the local workspace (an effect): an invocation becomes a job of the workspace.

A model deployment's job scores the input's files in mini-batches (runtime/batch/engine.py) with the
deployment's scoring script, or, without one, with the built-in scorer of its ONNX or MLflow model. The
job is a run like a pipeline's (`job list|show|logs|cancel`), with one step, `batchscoring`, recording
the input's hash, the settings, and the output folder `score` (its predictions) in the content store.
A pipeline-component deployment runs its component as a pipeline job with the invocation's inputs.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_gitops import progress
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.deploy import Deployer
from mlops_gitops.backends.local.environments import EnvResolver, EnvSource
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.pipelines import PipelineResolver, PipelineRun, new_run_id
from mlops_gitops.backends.local.remote import RemoteInputs
from mlops_gitops.backends.local.runs import RunRecords
from mlops_gitops.backends.local.serving import ServingController
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import NotFoundError, WorkspaceError
from mlops_gitops.fsutil import UnsafePathError, copy_private, ensure_dir, safe_join, scan
from mlops_gitops.hashing import canonical_json, file_digest, path_manifest
from mlops_gitops.runtime.batch.engine import BatchOutcome, MiniBatchEngine, WorkerSpec
from mlops_gitops.runtime.batch.settings import BatchSettings, SettingsError
from mlops_gitops.runtime.mlflow_models import SCORING_SCRIPT
from mlops_gitops.runtime.pipelines.runner import OutputRecord
from mlops_gitops.runtime.pipelines.steps import FileEntry, PipelineError, manifest_digest
from mlops_gitops.runtime.remote import Datastore, RemoteError, is_remote_input, shown
from mlops_gitops.spec.references import parse_asset_ref
from mlops_gitops.state import ActualResource, ArtifactFile

if TYPE_CHECKING:  # the image builder (jinja2) is imported only where images are built
    from mlops_gitops.backends.local.job_images import JobImages

STEP = "batchscoring"  # the step Azure's batch jobs show
OUTPUT = "score"  # the output Azure's batch jobs name (named-outputs/score)
BATCH = Path(__file__).parents[2] / "runtime" / "batch"
ONNX_SCORER = BATCH / "onnx_score.py"
MLFLOW_SCORER = BATCH / "mlflow_score.py"


@dataclass
class BatchInput:
    origin: str  # data:name:version, a path, or a URL as shown
    files: list[FileEntry]  # rel: the file's path inside the input; source: where it is read from
    tabular: bool = False  # an mltable folder: run() gets DataFrames

    @property
    def sha256(self) -> str:
        return manifest_digest(tuple(self.files)) if self.hashed else ""

    @property
    def hashed(self) -> bool:
        return all(f.sha256 for f in self.files)

    def hash(self) -> None:
        """Hash the files of a local input (a data asset's are known): the job records what it read."""
        self.files = [f if f.sha256 else FileEntry(f.rel, *file_digest(f.source), f.source) for f in self.files]

    def described(self) -> dict[str, Any]:
        return {"data": self.origin, **({"sha256": self.sha256} if self.hashed else {})}


@dataclass
class BatchJobResult:
    run_id: str
    status: str
    outcome: BatchOutcome | None = None
    output_files: list[Path] = field(default_factory=list)  # where --output put them
    output_folder: Path | None = None  # the job's own output folder (a model deployment's)
    message: str = ""


def _mltable_files(folder: Path) -> list[Path] | None:
    """The files an MLTable file in `folder` names (file:, folder:, pattern:), or None without one."""
    spec_file = folder / "MLTable"
    if not spec_file.is_file():
        return None
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(spec_file.read_text(encoding="utf-8")) or {}
    found: list[Path] = []
    for entry in data.get("paths") or []:
        for key, value in (entry or {}).items():
            try:
                target = safe_join(folder, str(value).removeprefix("./")) if key != "pattern" else folder
            except UnsafePathError as exc:
                raise WorkspaceError(f"{spec_file}: {exc}") from None
            if key == "file":
                found.append(target)
            elif key == "folder":
                found.extend(sorted(p for p in target.rglob("*") if p.is_file()))
            elif key == "pattern":
                found.extend(sorted(p for p in folder.glob(str(value)) if p.is_file()))
    return found


class BatchJobs:
    def __init__(self, store: LocalStore, hooks: Hooks, datastores: dict[str, Datastore] | None = None) -> None:
        self.store = store
        self.hooks = hooks
        self.records = RunRecords(store)
        self.remote = RemoteInputs(store, datastores or {}, hooks)

    # -- what an invocation names ------------------------------------------------------------------

    def deployment(self, endpoint: str, name: str | None) -> ActualResource:
        found = self.store.get(Address(Kind.BATCH_ENDPOINT, endpoint)) if self.store.has_state() else None
        if found is None:
            online = self.store.has_state() and self.store.get(Address(Kind.ONLINE_ENDPOINT, endpoint)) is not None
            raise NotFoundError(f"batch endpoint '{endpoint}' does not exist in the workspace" + (
                f" ('{endpoint}' is an online endpoint: use `mlops-gitops endpoint invoke {endpoint}`)" if online
                else " (apply it first; `mlops-gitops state list` shows what is there)"))
        chosen = name or str((found.spec.get("defaults") or {}).get("deployment_name") or "")
        if not chosen:
            raise WorkspaceError(f"batch endpoint '{endpoint}' has no default deployment (defaults.deployment_name): "
                                 "give one with --deployment")
        dep = self.store.get(Address(Kind.BATCH_DEPLOYMENT, f"{endpoint}/{chosen}"))
        if dep is None:
            known = sorted(a.name.partition("/")[2] for a in self.store.read().resources
                           if a.kind is Kind.BATCH_DEPLOYMENT and a.name.startswith(f"{endpoint}/"))
            raise NotFoundError(f"batch endpoint '{endpoint}' has no deployment '{chosen}'" +
                                (f" (its deployments: {', '.join(known)})" if known else " (it has none applied)"))
        return dep

    def resolve_input(self, given: str) -> BatchInput:
        """A data asset (azureml:NAME:VERSION, azureml:NAME@latest), a URL, or a local file or folder."""
        ref = parse_asset_ref(given)
        if ref is not None:
            snapshot = self.store.read()
            found = (snapshot.resources.get(Address(Kind.DATA, ref.name, ref.version)) if ref.version else
                     snapshot.latest(Kind.DATA, ref.name))
            if found is None or (ref.label not in (None, "latest")):
                what = f"{ref.name}:{ref.version}" if ref.version else f"{ref.name}@{ref.label or 'latest'}"
                raise NotFoundError(f"--input {given}: data asset {what} is not registered in the workspace")
            origin = f"data:{found.address.name}:{found.address.version}"
            if not found.files and is_remote_input(str(found.spec.get("path", ""))):
                return self._remote(str(found.spec["path"]), str(found.spec.get("type", "uri_folder")), origin)
            files = [FileEntry(f.rel, f.sha256, f.size, self.store.artifact_path(f.sha256)) for f in found.files]
            if not files:
                raise WorkspaceError(f"--input {given}: data asset {origin[5:]} holds no files")
            return BatchInput(origin, files, tabular=found.spec.get("type") == "mltable")
        if is_remote_input(given):
            return self._remote(given, "uri_folder", shown(given))
        path = Path(given).expanduser()
        if not path.exists():
            raise WorkspaceError(f"--input {given}: no such file or folder")
        path = path.resolve()
        table = _mltable_files(path) if path.is_dir() else None
        listed, problems = scan(path, path)  # hashed later, while the workers score (see execute)
        if problems:
            raise WorkspaceError(f"--input {given}: {problems[0].describe(path.name, 'the input folder')}")
        real = dict(listed)
        if table is not None:
            names = [p.relative_to(path).as_posix() for p in table]
            missing = [n for n in names if n not in real]
            if missing:
                raise WorkspaceError(f"--input {given}: its MLTable names {missing[0]}, which is not there")
            chosen = names
        else:
            chosen = sorted(rel for rel in real if not rel.split("/")[-1].startswith("."))  # .gitignore, .DS_Store
        if not chosen:
            raise WorkspaceError(f"--input {given}: the folder is empty: there is nothing to score")
        return BatchInput(str(path), [FileEntry(rel, "", 0, real[rel]) for rel in chosen], tabular=table is not None)

    def _remote(self, url: str, type_: str, origin: str) -> BatchInput:
        try:
            files = list(self.remote.files(url, type_))
        except RemoteError as exc:
            raise WorkspaceError(f"--input {shown(url)}: {exc}") from None
        if not files:
            raise WorkspaceError(f"--input {shown(url)}: nothing there to score")
        return BatchInput(origin, files)

    # -- a pipeline-component deployment's job ---------------------------------------------------------

    def pipeline_run(self, dep: ActualResource, given: list[str], overrides: list[str],
                     images: JobImages | None, run_id: str | None = None) -> PipelineRun:
        """The deployment's component as a pipeline job with the invocation's inputs (steps reused as in any run)."""
        endpoint, _, name = dep.address.name.partition("/")
        ref = (dep.derived.get("refs") or {}).get("component")
        if ref is None:
            raise WorkspaceError(f"{dep.address}: its component must be a registered one (azureml:NAME:VERSION) to "
                                 "run locally")
        comp_name, _, version = ref.partition(":")
        found = self.store.get(Address(Kind.COMPONENT, comp_name, version))
        if found is None:
            raise WorkspaceError(f"{dep.address}: component {ref} is not registered in the workspace")
        declared = {str(k): v or {} for k, v in (found.spec.get("inputs") or {}).items()}
        inputs: dict[str, Any] = {}
        refs = {"component": ref}
        files: list[ArtifactFile] = []
        for port, value in _bind(given, declared, str(dep.address)).items():
            type_ = str(declared[port].get("type", "uri_folder"))
            if type_ in LITERALS:
                try:
                    inputs[port] = LITERALS[type_](value)
                except ValueError:
                    raise WorkspaceError(f"--input {port}={value}: the component's input is {type_}") from None
                continue
            resolved = self.resolve_input(value)
            inputs[port] = {"type": type_, "path": value}
            if resolved.origin.startswith("data:"):
                refs[f"inputs.{port}.path"] = resolved.origin[len("data:"):]
            else:
                files += [ArtifactFile(f"inputs.{port}.path/{f.rel}", f.sha256, f.size, f.source)
                          for f in resolved.files]
        missing = [p for p, d in declared.items() if p not in inputs and "default" not in d and not d.get("optional")]
        if missing:
            raise WorkspaceError(f"{dep.address}: its component needs input(s) {', '.join(missing)}: give "
                                 "--input NAME=VALUE")
        settings = {k: v for k, v in (dep.spec.get("settings") or {}).items() if k in PIPELINE_SETTINGS}
        for pair in overrides:
            key, sep, value = pair.partition("=")
            key = key.removeprefix("settings.")
            if not sep or key not in PIPELINE_SETTINGS:
                raise WorkspaceError(f"--set {pair}: a pipeline deployment takes {', '.join(PIPELINE_SETTINGS)}")
            settings[key] = value.strip().lower() == "true"
        outputs = {str(k): {"type": str((v or {}).get("type", "uri_folder"))}
                   for k, v in (found.spec.get("outputs") or {}).items()}
        spec = {"type": "pipeline", "component": f"azureml:{ref}", "inputs": inputs, "outputs": outputs,
                "settings": settings}
        try:
            pipeline = PipelineResolver(self.store, self.hooks).resolve(endpoint, spec, {"refs": refs}, files,
                                                                        dep.source_file or "")
        except PipelineError as exc:
            raise WorkspaceError(f"{dep.address}: {exc}") from None
        run = PipelineRun(self.store, self.hooks, pipeline, {"batch": {"endpoint": endpoint, "deployment": name,
                                                                       "spec_hash": dep.spec_hash}}, images=images)
        run.run_id = run_id or run.run_id
        return run

    def export_outputs(self, outputs: dict[str, OutputRecord], dest: Path) -> list[Path]:
        return [p for port, (_, files) in sorted(outputs.items()) for p in _export(files, dest / port)]

    # -- a model deployment's job ------------------------------------------------------------------

    def scorer(self, dep: ActualResource, here: Path) -> tuple[WorkerSpec, EnvSource | None, dict[str, Any]]:
        """How the workers score: the deployment's script in its environment, or a built-in scorer."""
        deployer = Deployer(self.store, self.hooks, ServingController(self.store.path), "process")
        cfg, env = deployer.layout(dep, azure_only=())  # compute names the Azure cluster: plan says so
        described: dict[str, Any] = {"model": f"{cfg.model_name}:{cfg.model_version}" if cfg.model_name else None}
        env_vars = {**cfg.environment_variables, "AZUREML_MODEL_DIR": cfg.model_dir or ""}
        if dep.spec.get("code_configuration"):
            described["scoring_script"] = cfg.scoring_script
            script, code_dir = str(cfg.scoring_script), str(cfg.code_dir)
        elif cfg.scoring_script == SCORING_SCRIPT.name:  # an MLflow model: its pyfunc in its environment
            code = ensure_dir(here / "mlflow-scoring")
            shutil.copyfile(MLFLOW_SCORER, code / MLFLOW_SCORER.name)
            script, code_dir, described["scorer"] = MLFLOW_SCORER.name, str(code), "mlflow (built in)"
        elif cfg.model_dir and any(Path(cfg.model_dir).rglob("*.onnx")):
            script, code_dir, described["scorer"] = ONNX_SCORER.name, str(BATCH), "onnxruntime (built in)"
            return WorkerSpec(sys.executable, code_dir, script, env_vars), None, described
        else:
            raise WorkspaceError(f"{dep.address}: its model is neither ONNX nor MLflow, and the deployment has no "
                                 "code_configuration with a scoring script to score it")
        python = EnvResolver(self.store, self.hooks).python(env)
        return WorkerSpec(python, code_dir, script, env_vars), env, described

    def start(self, dep: ActualResource, given: BatchInput, settings: BatchSettings, run_id: str | None = None) -> str:
        endpoint, _, name = dep.address.name.partition("/")
        run_id = run_id or new_run_id(endpoint)
        self.store.ensure()
        leases = {f.sha256 for f in given.files if f.source == self.store.artifact_path(f.sha256)}
        self.records.start(run_id, endpoint, dep.source_file or "", None, {
            "batch": {"endpoint": endpoint, "deployment": name, "spec_hash": dep.spec_hash},
            "settings": settings.as_dict()},
            [{"step": STEP, "component": f"batch-deployment:{endpoint}/{name}",
              "inputs": canonical_json({"input": given.described()}),
              "environment": "{}"}], leases=leases)
        return run_id

    def execute(self, run_id: str, dep: ActualResource, given: BatchInput, settings: BatchSettings,
                output: Path | None) -> BatchJobResult:
        here = safe_join(self.store.path / "runs", run_id, STEP)
        log_path = here / "log.txt"
        self.records.step_event(run_id, STEP, "preparing", log=str(log_path))
        try:
            spec, env, described = self.scorer(dep, here)
        except WorkspaceError as exc:
            return self._end(run_id, "failed", None, {}, str(exc))
        spec.tabular = given.tabular
        spec.env |= dict(settings.environment_variables) | {
            "AZUREML_LOG_LEVEL": settings.logging_level, "AZUREML_BI_OUTPUT_PATH": str(here / "outputs" / OUTPUT)}
        self.records.step_event(run_id, STEP, "running", environment=described | {
            "label": env.label if env else "the toolkit's Python"})
        files = [str(p) for p in _laid_out(given.files, here / "inputs")]
        workers = settings.local_workers()
        if workers < settings.workers:
            self.hooks.warn(f"{dep.address}: {settings.workers} workers are more than this machine runs: it gets "
                            f"{workers} (MLOPS_GITOPS_MAX_WORKERS raises the bound)")
        hashing = threading.Thread(target=given.hash, name="hash-input", daemon=True)
        hashing.start()  # the input's hash, computed while the workers start and score
        with progress.task(f"batch job {run_id}") as task:
            def advanced(done: int, total: int) -> None:
                task.detail = f"{done}/{total} mini-batches"

            engine = MiniBatchEngine(settings, spec, log_path, here / "outputs" / OUTPUT,
                                     cancel_requested=lambda: self.records.cancel_requested(run_id),
                                     on_progress=advanced)
            try:
                outcome = engine.run(files)
            except BaseException:  # interrupted (Ctrl-C): recorded as such, its workers already stopped
                self._end(run_id, "failed", None, {}, "interrupted")
                raise
            hashing.join()
        self.records.step_event(run_id, STEP, "running", inputs={"input": given.described()})
        stored = self._store(run_id, here / "outputs" / OUTPUT)
        result = self._end(run_id, outcome.status, outcome, {OUTPUT: ("uri_folder", stored)}, outcome.message)
        result.output_folder = here / "outputs" / OUTPUT
        if output is not None and stored:
            result.output_files = _export(stored, output)
        return result

    def refuse(self, run_id: str, endpoint: str, deployment: str | None, message: str) -> BatchJobResult:
        """A job that could not start, recorded as failed with the reason (its client polls for it)."""
        self.store.ensure()
        self.records.start(run_id, endpoint, "", None, {"batch": {"endpoint": endpoint, "deployment": deployment}},
                           [{"step": STEP, "component": f"batch-deployment:{endpoint}/{deployment}", "inputs": "{}",
                             "environment": "{}"}])
        return self._end(run_id, "failed", None, {}, message)

    def _store(self, run_id: str, folder: Path) -> tuple[FileEntry, ...]:
        manifest = path_manifest(folder) if folder.is_dir() else []
        self.store.record_blobs([digest for _, digest, _ in manifest], lease=run_id)
        entries = []
        for rel, digest, size in manifest:
            self.store.artifacts.put(folder / rel, digest)
            entries.append(FileEntry(rel, digest, size, self.store.artifacts.path(digest)))
        return tuple(entries)

    def _end(self, run_id: str, status: str, outcome: BatchOutcome | None, outputs: dict[str, OutputRecord],
             message: str) -> BatchJobResult:
        metrics = outcome.metrics() if outcome is not None else {}
        self.records.step_event(run_id, STEP, status, outputs=outputs, metrics=metrics, message=message)
        self.records.finish(run_id, status, outputs, message)
        self.hooks.emit("job.completed" if status == "completed" else "job.failed", f"run:{run_id}", {
            "job": run_id.rsplit("-", 3)[0], "kind": "batch", "status": status, "metrics": metrics,
            "failures": [message.splitlines()[0]] if message else []})
        return BatchJobResult(run_id, status, outcome, message=message)


def _laid_out(files: list[FileEntry], dest: Path) -> list[Path]:
    """Where the workers read each file: in place when it has its own name (a local input), else linked
    (copied across file systems) under its name in the job's folder: stored and downloaded files are named
    by their hash, and scripts read names and extensions."""
    out = []
    for f in files:
        if f.source is not None and f.source.name == f.rel.rsplit("/", 1)[-1]:
            out.append(f.source)
            continue
        target = safe_join(dest, f.rel, what="input file")
        ensure_dir(target.parent)
        if not target.exists():
            try:
                os.link(f.source, target)
            except OSError:
                copy_private(f.source, target)
        out.append(target)
    return out


def _export(files: tuple[FileEntry, ...], dest: Path) -> list[Path]:
    """--output: the job's output files copied into a folder of the user's."""
    ensure_dir(dest)
    out = []
    for f in files:
        target = safe_join(dest, f.rel, what="output file")
        ensure_dir(target.parent)
        copy_private(f.source, target)
        out.append(target)
    return out


def is_pipeline_deployment(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "pipeline" or (spec.get("model") is None and spec.get("component") is not None)


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


LITERALS: dict[str, Callable[[str], Any]] = {"string": str, "integer": int, "number": float, "boolean": _boolean}
PIPELINE_SETTINGS = ("continue_on_step_failure", "force_rerun")


def _bind(given: list[str], declared: dict[str, Any], where: str) -> dict[str, str]:
    """--input values to the component's inputs: NAME=VALUE each, or one bare VALUE for its one data input."""
    data_inputs = [n for n, d in declared.items() if str((d or {}).get("type", "uri_folder")) not in LITERALS]
    out: dict[str, str] = {}
    for value in given:
        name, sep, rest = value.partition("=")
        if sep and name in declared:
            out[name] = rest
        elif len(data_inputs) == 1 and data_inputs[0] not in out and not (
                sep and name.isidentifier() and not Path(value).exists()):  # NAME=… of an input it lacks
            out[data_inputs[0]] = value
        else:
            raise WorkspaceError(f"{where}: --input {value}: give NAME=VALUE, NAME one of the component's inputs "
                                 f"({', '.join(declared) or 'none'})")
    return out


def settings_for(dep: ActualResource, overrides: list[str]) -> BatchSettings:
    try:
        return BatchSettings.from_spec(dep.spec).overridden(overrides)
    except (SettingsError, ValueError) as exc:
        raise WorkspaceError(f"{dep.address}: {exc}") from None
