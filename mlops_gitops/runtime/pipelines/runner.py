"""Execute a resolved pipeline: steps in dependency order, independent ones at the same time.

Each step either reuses the outputs recorded for its key or runs its command in a shell, in its own
folder (code, inputs laid out, outputs to write), with the environment's interpreter first on PATH.
A failed step stops its dependents; the others finish. The store persists everything as it happens,
so a run interrupted or failed can be continued: the steps that succeeded are reused next time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from mlops_gitops import progress
from mlops_gitops.fsutil import UnsafePathError, copy_private, ensure_dir, open_private, safe_join
from mlops_gitops.graph import run_dag
from mlops_gitops.runtime.containers import Engine
from mlops_gitops.runtime.mlflow_tracking import STORE_FOLDER, read_store, tracking_environment
from mlops_gitops.runtime.pipelines.steps import (
    FileEntry,
    Input,
    Pipeline,
    PipelineError,
    Step,
    literal_text,
    manifest_digest,
    render_command,
    variable_for,
)

OutputRecord = tuple[str, tuple[FileEntry, ...]]  # type, files


@dataclass
class StepResult:
    status: str  # completed | reused | failed | skipped | cancelled
    key: str = ""
    exit_code: int | None = None
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    reused_from: str = ""
    # models the step registered with mlflow.register_model: (model name, the output that holds it)
    registered: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunResult:
    status: str  # completed | failed | cancelled
    steps: dict[str, StepResult]
    outputs: dict[str, OutputRecord] = field(default_factory=dict)  # the pipeline's own outputs


class RunStore(Protocol):
    """What the runner needs from the workspace: the reuse cache, storage, environments, records."""

    def cached(self, key: str) -> tuple[dict[str, OutputRecord], dict[str, Any], str] | None: ...

    def store_outputs(self, step: Step, paths: dict[str, Path]) -> dict[str, OutputRecord]: ...

    def save_cache(self, key: str, step: str, outputs: dict[str, OutputRecord], metrics: dict[str, Any]) -> None: ...

    def python_for(self, step: Step) -> str: ...

    def container_for(self, step: Step) -> tuple[Engine, str] | None:
        """runtime: container — the engine and the image the step runs in; None: it runs as a process."""
        ...

    def step_event(self, step: str, status: str, **fields: Any) -> None: ...

    def cancel_requested(self) -> bool: ...


def _lay_out(files: tuple[FileEntry, ...], dest: Path) -> None:
    for f in files:
        target = _join(dest, f.rel, "file") if f.rel else dest
        ensure_dir(target.parent)
        try:
            os.link(f.source, target)
        except OSError:
            copy_private(f.source, target)


def _join(parent: Path, name: str, what: str) -> Path:
    try:
        return safe_join(parent, name, what=what)
    except UnsafePathError as exc:
        raise PipelineError(str(exc)) from None


def _input_path(inp: Input, files: tuple[FileEntry, ...], dest: Path) -> str:
    ensure_dir(dest)
    _lay_out(files, dest)
    if inp.type == "uri_file":
        if len(files) != 1:
            raise PipelineError(f"a uri_file input needs exactly one file; {inp.origin or 'its source'} has "
                                f"{len(files)}")
        return str(dest / files[0].rel)
    return str(dest)


def _metrics(paths: dict[str, Path]) -> dict[str, Any]:
    """Metrics a step wrote: metrics.json at the top of an output folder (as DVC metrics files)."""
    found: dict[str, Any] = {}
    for path in paths.values():
        candidate = path / "metrics.json" if path.is_dir() else path if path.name.endswith("metrics.json") else None
        if candidate is None or not candidate.is_file():
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.update({k: v for k, v in data.items() if isinstance(v, int | float | str | bool)})
    return found


def _port(name: str) -> str:
    """A logged model's name as an output name (an identifier)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "model"


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class PipelineRunner:
    def __init__(self, pipeline: Pipeline, store: RunStore, run_dir: Path, parallelism: int = 4,
                 force_rerun: bool = False, log: Callable[[str], None] = print) -> None:
        self.pipeline = pipeline
        self.store = store
        self.run_dir = run_dir
        self.parallelism = max(1, parallelism)
        self.force = force_rerun or pipeline.force_rerun
        self.log = log
        self.results: dict[str, StepResult] = {}
        self.first_failure: str | None = None

    def run(self) -> RunResult:
        def settle(name: str, result: StepResult | None, exc: BaseException | None) -> bool:
            result = result if exc is None and result is not None else StepResult("failed", message=str(exc))
            self._finish(name, result)
            if result.status == "failed" and self.first_failure is None:
                self.first_failure = name
            return result.status in ("completed", "reused")

        def admit(name: str) -> bool:
            if self.store.cancel_requested():
                self._finish(name, StepResult("cancelled", message="the run was cancelled"))
                return False
            if self.first_failure is not None and not self.pipeline.continue_on_step_failure:
                self._finish(name, StepResult("skipped", message=(
                    f"not started: step '{self.first_failure}' failed and settings.continue_on_step_failure is "
                    "false (Azure's default); steps already running finished")))
                return False
            return True

        run_dag(self.pipeline.graph(), lambda name: self._step(self.pipeline.steps[name]), settle,
                skip=lambda name: self._finish(name, StepResult("skipped",
                                                                message="an upstream step did not succeed")),
                admit=admit, parallelism=self.parallelism)
        return self._summary()

    def _finish(self, name: str, result: StepResult) -> None:
        self.results[name] = result
        if result.status in ("skipped", "cancelled") or (result.status == "failed" and not result.key):
            self.store.step_event(name, result.status, message=result.message)
        self.log(f"  {name}: {result.status}" + (f" — {result.message.splitlines()[0]}" if result.message else ""))

    def _summary(self) -> RunResult:
        statuses = {r.status for r in self.results.values()}
        status = ("cancelled" if "cancelled" in statuses else
                  "failed" if statuses & {"failed", "skipped"} else "completed")
        outputs = {}
        for out, (step, port) in self.pipeline.outputs.items():
            res = self.results.get(step)
            if res is not None and port in res.outputs:
                outputs[out] = res.outputs[port]
        return RunResult(status, dict(self.results), outputs)

    # -- one step --------------------------------------------------------------------------------

    def _upstream_records(self, step: Step) -> dict[tuple[str, str], OutputRecord]:
        out = {}
        for inp in step.inputs.values():
            if inp.kind == "output":
                record = self.results[inp.step].outputs.get(inp.output)
                if record is None:
                    raise PipelineError(f"step '{step.name}' reads output '{inp.output}' of step '{inp.step}', "
                                        "which it did not produce")
                out[(inp.step, inp.output)] = record
        return out

    def _step(self, step: Step) -> StepResult:
        upstream = self._upstream_records(step)
        key = step.key({k: manifest_digest(files) for k, (_, files) in upstream.items()})
        if not self.force and step.deterministic:
            hit = self.store.cached(key)
            if hit is not None:
                outputs, metrics, origin = hit
                self.store.step_event(step.name, "reused", key=key, outputs=outputs, metrics=metrics,
                                      reused_from=origin)
                return StepResult("reused", key, outputs=outputs, metrics=metrics, reused_from=origin)
        with progress.task(f"step {step.name} of {self.pipeline.name}"):
            return self._execute(step, key, upstream)

    def _execute(self, step: Step, key: str, upstream: dict[tuple[str, str], OutputRecord]) -> StepResult:
        step.check_names()
        here = _join(self.run_dir, step.name, "step name")
        shutil.rmtree(here, ignore_errors=True)
        ensure_dir(here / "code")
        for folder in ("outputs", "logs"):  # Azure's working-folder conventions, there before the command
            ensure_dir(here / "code" / folder)
        log_path = here / "log.txt"
        self.store.step_event(step.name, "preparing", key=key, log=str(log_path))
        container = self.store.container_for(step)
        python = self.store.python_for(step) if container is None else "python3"
        _lay_out(step.code, here / "code")
        values: dict[str, str | None] = {}
        for name, inp in step.inputs.items():
            if inp.kind == "literal":
                values[f"inputs.{name}"] = None if inp.value is None else literal_text(inp.value)
            elif inp.kind == "data":
                values[f"inputs.{name}"] = _input_path(inp, inp.files, here / "inputs" / name)
            else:
                _, files = upstream[(inp.step, inp.output)]
                values[f"inputs.{name}"] = _input_path(inp, files, here / "inputs" / name)
        paths: dict[str, Path] = {}
        for name, type_ in step.outputs.items():
            path = here / "outputs" / name
            ensure_dir(path.parent if type_ == "uri_file" else path)
            paths[name] = path
            values[f"outputs.{name}"] = str(path)
        bound = render_command(step.command, values)
        own = {**tracking_environment(here, self.pipeline.name, step.environment_variables),
               **step.environment_variables, "PYTHONUNBUFFERED": "1", "AZUREML_RUN_ID": self.run_dir.name,
               "MLOPS_GITOPS_STEP": step.name,
               # every input and output as Azure ML sets them, also those the command does not name
               **{variable_for(k): v for k, v in values.items() if v is not None and "\x00" not in v},
               **bound.env}  # what the step is given (a container: all it has)
        env = {**os.environ, **own, "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("VIRTUAL_ENV", None)
        started = time.monotonic()
        with os.fdopen(open_private(log_path), "ab") as out:
            out.write(f"$ {bound.command}\n".encode())
            if container is not None:
                out.write(f"# in image {container[1]}\n".encode())
            out.writelines(f"# {var}={value}\n".encode() for var, value in sorted(bound.env.items()))
            out.flush()
            if container is None:
                code = self._process(step, bound.command, here, env, out)
        if container is not None:  # the image's own PATH and Python; the step's folder mounted where it is
            engine, image = container
            self.store.step_event(step.name, "running")
            code = engine.run_to_end(image, bound.command, here / "code", [here], own, log_path, step.timeout_s,
                                     {"org.mlops-gitops.run": self.run_dir.name, "org.mlops-gitops.step": step.name})
        if code is None:
            message = f"exceeded its timeout of {step.timeout_s} s\n{_tail(log_path)}"
            self.store.step_event(step.name, "failed", exit_code=None, message=message)
            return StepResult("failed", key, None, message=message)
        elapsed = time.monotonic() - started
        if code != 0:
            cancelled = self.store.cancel_requested()
            status = "cancelled" if cancelled else "failed"
            message = ("the run was cancelled" if cancelled else
                       f"exit code {code} after {elapsed:.1f} s; last lines of its log:\n{_tail(log_path)}")
            self.store.step_event(step.name, status, exit_code=code, message=message)
            return StepResult(status, key, code, message=message)
        missing = [n for n, p in paths.items() if step.outputs[n] == "uri_file" and not p.is_file()]
        if missing:
            message = f"the command succeeded but did not write its uri_file output(s): {', '.join(missing)}"
            self.store.step_event(step.name, "failed", exit_code=code, message=message)
            return StepResult("failed", key, code, message=message)
        metrics = _metrics(paths)
        tracked = read_store(here / STORE_FOLDER)
        registered: list[tuple[str, str]] = []
        if not tracked.empty:  # what the step logged with MLflow joins its record; its models are outputs
            metrics |= tracked.metrics | {f"params.{k}": v for k, v in tracked.params.items()} \
                | {f"tags.{k}": v for k, v in tracked.tags.items()}
            logged = {name: f"mlflow_{_port(name)}" for name in tracked.models}
            paths |= {logged[name]: folder for name, folder in tracked.models.items()}
            step = replace(step, outputs={**step.outputs, **dict.fromkeys(logged.values(), "mlflow_model")})
            registered = [(model, logged[name]) for model, name in tracked.registered if name in logged]
        outputs = self.store.store_outputs(step, paths)
        if step.deterministic:
            self.store.save_cache(key, step.name, outputs, metrics)
        self.store.step_event(step.name, "completed", exit_code=code, outputs=outputs, metrics=metrics)
        return StepResult("completed", key, code, outputs, metrics, registered=registered)

    def _process(self, step: Step, command: str, here: Path, env: dict[str, str], out: Any) -> int | None:
        """The command as a process group of its own; its exit code, or None when it ran past its timeout."""
        proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=here / "code", env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
        self.store.step_event(step.name, "running", pid=proc.pid)
        try:
            return proc.wait(timeout=step.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


__all__ = ["OutputRecord", "PipelineRunner", "RunResult", "RunStore", "StepResult"]
