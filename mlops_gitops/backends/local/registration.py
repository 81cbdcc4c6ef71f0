"""Assets made by a job of the tree (`path: azureml://jobs/<job>/outputs/<output>`): their files, content
and version come from the job's latest completed run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlops_gitops import versioning
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.hashing import content_summary, spec_hash, versioned_content
from mlops_gitops.runtime.pipelines.runner import RunResult
from mlops_gitops.spec.references import JobOutputRef
from mlops_gitops.state import ActualResource, ArtifactFile, DesiredResource, run_output_files


def from_latest_run(store: LocalStore, desired: DesiredResource,
                    ref: JobOutputRef) -> tuple[DesiredResource | ActualResource, str]:
    """The asset as the latest run made it: an existing version when the run reproduced its files."""
    run_id, files = run_output_files(store.job_outputs(ref.job), ref.job, ref.output, ref.subpath)
    if run_id is None:
        where = f"output '{ref.output}'" + (f" path '{ref.subpath}'" if ref.subpath else "")
        raise WorkspaceError(f"job '{ref.job}' has no completed run with {where} (run it: mlops-gitops job run)")
    paths = {"path": content_summary([(f.rel, f.sha256, f.size) for f in files], True)}
    derived = {**desired.derived, "paths": paths}
    content = versioned_content(desired.spec, derived)
    kind, name = desired.address.kind, desired.address.name
    snapshot = store.read()
    same = versioning.same_content(snapshot, kind, name, content, latest_only=False)
    if same is not None and desired.auto_version:
        return same, run_id
    version = desired.address.version or "1"
    taken = snapshot.resources.get(Address(kind, name, version))
    if taken is not None and taken.content_hash != content:
        if not desired.auto_version:
            raise WorkspaceError(f"{desired.address} exists with other files; run {run_id} produced new ones: "
                                 "bump the version (or remove 'version' to number it automatically)")
        version = versioning.next_version(snapshot, kind, name)
    spec = {**desired.spec, "version": version}
    return replace(desired, address=Address(kind, name, version), spec=spec, derived=derived,
                   content_hash=content, spec_hash=spec_hash({"spec": spec, "derived": derived}),
                   artifacts=[ArtifactFile(f.rel, f.sha256, f.size) for f in files]), run_id


def register_logged_models(store: LocalStore, job: str, run_id: str, result: RunResult,
                           note: Callable[[str], None]) -> list[Address]:
    """Models a run's steps registered with `mlflow.register_model`: each a version of that model in the
    workspace registry (type mlflow_model, the next integer version), unless its latest version already
    holds the same files. Recorded as made by the run, not by apply (apply neither owns nor prunes them)."""
    made: list[Address] = []
    for step, r in result.steps.items():
        for model, output in r.registered:
            record = r.outputs.get(output)
            if record is None:
                continue
            files = [ArtifactFile(f.rel, f.sha256, f.size) for f in record[1]]
            derived = {"paths": {"path": content_summary([(f.rel, f.sha256, f.size) for f in files], True)}}
            spec: dict[str, Any] = {"name": model, "type": "mlflow_model",
                                    "path": f"azureml://jobs/{job}/outputs/{output}",
                                    "description": f"registered by step {step} of run {run_id} (MLflow)",
                                    "tags": {"mlflow.run": run_id, "mlflow.step": step}}
            content = versioned_content(spec, derived)
            snapshot = store.read()
            if versioning.same_content(snapshot, Kind.MODEL, model, content) is not None:
                continue
            version = versioning.next_version(snapshot, Kind.MODEL, model)
            spec["version"] = version
            address = Address(Kind.MODEL, model, version)
            desired = DesiredResource(address=address, spec=spec, derived=derived, content_hash=content,
                                      spec_hash=spec_hash({"spec": spec, "derived": derived}), source_file="",
                                      schema_name="model", auto_version=True, artifacts=files)
            metrics = {k: v for s in result.steps.values() for k, v in s.metrics.items()}  # for release gates
            store.write(desired, "create", {"run.id": run_id, "run.step": step, "job": job,
                                            "by": "mlflow.register_model", "run.metrics": metrics},
                        None, origin="run")
            note(f"  registered model {model}:{version} (logged by step {step} with MLflow)")
            made.append(address)
    return made
