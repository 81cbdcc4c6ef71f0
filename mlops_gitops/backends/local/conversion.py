"""ONNX conversion of a registered model version (an effect): in an environment built for it, checked for
parity on a sample, timed, and turned into the converted version's files and properties.

The converters (skl2onnx, onnxmltools) live in that environment with the source model's own libraries;
the toolkit only runs runtime/convert/convert_model.py there. A conversion whose parity is outside the
declared tolerance, or that the converter refuses, raises ConversionError: nothing is registered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops_gitops import progress
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.deploy import azure_layout
from mlops_gitops.backends.local.environments import EnvResolver, EnvSource
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.runs import RunRecords
from mlops_gitops.backends.local.serving import materialise
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import ensure_dir, safe_join, write_private
from mlops_gitops.hashing import file_digest
from mlops_gitops.runtime.envs import resolve_requirements
from mlops_gitops.runtime.mlflow_models import find_mlmodel
from mlops_gitops.state import ActualResource, ArtifactFile, DesiredResource

SCRIPT = Path(__file__).parents[2] / "runtime" / "convert" / "convert_model.py"
# what every conversion environment has; the declaration's `requirements` add the model's own libraries
CONVERTERS = ("skl2onnx", "onnxmltools", "onnx", "onnxruntime", "numpy", "scikit-learn", "joblib", "cloudpickle")
TIMEOUT_S = 1800


class ConversionError(WorkspaceError):
    pass


@dataclass
class Converted:
    folder: Path  # model.onnx and conversion_report.json
    report: dict[str, Any]


def _within(report: dict[str, Any], tolerance: dict[str, Any]) -> list[str]:
    """What is outside the tolerance (nothing: the conversion passes)."""
    problems = []
    diff, agreement = report.get("max_abs_diff"), report.get("label_agreement")
    most, least = float(tolerance.get("max_abs_diff", 1e-4)), float(tolerance.get("min_label_agreement", 1.0))
    if diff is not None and diff > most:
        problems.append(f"largest absolute difference {diff:.3g} > max_abs_diff {most:g}")
    if agreement is not None and agreement < least:
        problems.append(f"equal labels {agreement:.2%} < min_label_agreement {least:.2%}")
    return problems


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report as the converted version's properties (flat, as Azure's model properties are)."""
    out: dict[str, Any] = {"onnx.converter": report.get("converter"), "onnx.source_estimator": report.get("estimator"),
                           "onnx.parity.rows": report.get("rows"),
                           "onnx.parity.max_abs_diff": report.get("max_abs_diff"),
                           "onnx.parity.label_agreement": report.get("label_agreement")}
    for key, value in (report.get("latency_ms") or {}).items():
        out[f"onnx.latency_ms.{key}"] = round(float(value), 4)
    latency = report.get("latency_ms") or {}
    for rows in ("1_row", "1000_rows"):
        source, onnx = latency.get(f"source_{rows}"), latency.get(f"onnx_{rows}")
        if source and onnx:
            out[f"onnx.speedup.{rows}"] = round(float(source) / float(onnx), 2)
    return {k: v for k, v in out.items() if v is not None}


def csv_files(store: LocalStore, data_ref: str, label: str, here: Path) -> list[str]:
    """The CSV files of a registered data asset (NAME:VERSION), laid out under `here`."""
    name, _, version = data_ref.partition(":")
    data = store.get(Address(Kind.DATA, name, version))
    if data is None or not data.files:
        raise ConversionError(f"{label} is not registered in the workspace (or holds no files)")
    found = sorted(str(p) for p in materialise([(f.rel, f.sha256) for f in data.files], store.artifact_path,
                                               here).rglob("*.csv"))
    if not found:
        raise ConversionError(f"{label} holds no CSV file")
    return found


class Converter:
    def __init__(self, store: LocalStore, hooks: Hooks) -> None:
        self.store = store
        self.hooks = hooks
        self.envs = EnvResolver(store, hooks)

    def sample(self, source: ActualResource, data_ref: str | None, here: Path) -> list[str]:
        """The CSV files of the sample: the named data asset's, else the training data of the source's run."""
        label = f"data asset {data_ref}" if data_ref else None
        if data_ref is None:
            data_ref, label = self._training_data(source)
        return csv_files(self.store, data_ref, f"the sample, {label},", here / "sample")

    def _training_data(self, source: ActualResource) -> tuple[str, str]:
        try:
            data_ref, run_id = RunRecords(self.store).training_data(source)
        except LookupError as exc:
            raise ConversionError(f"{exc}: name the sample's data asset in x-gitops.convert.sample.data") from None
        return data_ref, f"the training data of run {run_id} (data:{data_ref})"

    def environment(self, source: Address, model_dir: Path, extra: list[str], purpose: str = "conversion") -> EnvSource:
        """The converters, the model's libraries as it was logged (MLflow) and `extra`: one environment per set,
        shared by the conversions and importance measures that ask for the same packages."""
        requirements = [*CONVERTERS, *extra]
        mlmodel = find_mlmodel(model_dir)
        if mlmodel is not None and (mlmodel / "requirements.txt").is_file():  # as the model was logged
            requirements += [r for r in resolve_requirements((mlmodel / "requirements.txt").read_text()).requirements
                             if not r.lower().startswith("mlflow")]
        return EnvSource(f"the {purpose} environment of {source}",
                         resolved=resolve_requirements("\n".join(requirements)))

    def convert(self, source: ActualResource, declaration: dict[str, Any], data_ref: str | None,
                here: Path, check: bool = True) -> Converted:
        """Convert and measure; with `check`, raise when parity is outside the declared tolerance."""
        model_dir = materialise(azure_layout(source.spec.get("path"), [(f.rel, f.sha256) for f in source.files]),
                                self.store.artifact_path, here / "source")
        sample = self.sample(source, data_ref, here)
        env = self.environment(source.address, model_dir, list(declaration.get("requirements") or []))
        python = self.envs.python(env)
        output = ensure_dir(here / "converted")
        spec = declaration.get("sample") or {}
        request = {"model_dir": str(model_dir), "sample": sample, "drop_columns": list(spec.get("drop_columns") or []),
                   "rows": int(spec.get("rows", 200)), "output": str(output),
                   "converter": declaration.get("converter", "auto"), "target_opset": declaration.get("target_opset")}
        write_private(here / "request.json", json.dumps(request))
        with progress.task(f"converting {source.address} to ONNX and checking parity"):
            try:
                proc = subprocess.run([python, str(SCRIPT), str(here / "request.json")], capture_output=True,
                                      text=True, timeout=TIMEOUT_S, cwd=here)
            except subprocess.TimeoutExpired:
                raise ConversionError(f"converting {source.address} ran past {TIMEOUT_S} s") from None
        write_private(here / "log.txt", proc.stdout + proc.stderr)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[0 if proc.returncode in
                                                                                           (2, 3) else -1]
            raise ConversionError(f"converting {source.address} failed: {reason} (log: {here / 'log.txt'})")
        report = json.loads((output / "conversion_report.json").read_text())
        problems = _within(report, declaration.get("tolerance") or {})
        report["within_tolerance"] = not problems
        report["outside_tolerance"] = problems
        if problems and check:
            raise ConversionError(f"the ONNX conversion of {source.address} is outside its tolerance on "
                                  f"{report.get('rows')} sample rows: {'; '.join(problems)}; nothing was registered")
        return Converted(output, report)


def converted_version(store: LocalStore, hooks: Hooks,
                      desired: DesiredResource) -> tuple[DesiredResource, dict[str, Any]]:
    """A model version declared as the ONNX conversion of another: converted and checked; its files, and the
    report as provenance (as a run's metrics are: no content hash covers it)."""
    refs = desired.derived.get("refs") or {}
    ref = refs.get("x-gitops.convert.from")
    source = store.get(Address(Kind.MODEL, *ref.split(":", 1))) if ref else None
    if source is None:
        named = ref or desired.spec["x-gitops"]["convert"].get("from")
        raise ConversionError(f"{desired.address}: the model it converts ({named}) is not registered in the "
                              "workspace")
    here = safe_join(store.path / "conversions", desired.address.name, desired.address.version or "new")
    shutil.rmtree(here, ignore_errors=True)
    done = Converter(store, hooks).convert(source, desired.spec["x-gitops"]["convert"],
                                           refs.get("x-gitops.convert.sample.data"), here)
    files = [ArtifactFile(name, *file_digest(done.folder / name), done.folder / name)
             for name in ("model.onnx", "conversion_report.json")]
    props = summary(done.report)
    hooks.note(f"{desired.address}: {described(source.address, props)}")
    return replace(desired, artifacts=files), {"conversion": props, "converted_from": ref}


def described(source: Address, props: dict[str, Any]) -> str:
    return (f"converted {source} with {props.get('onnx.converter')}; on {props.get('onnx.parity.rows')} sample rows "
            f"the largest difference is {props.get('onnx.parity.max_abs_diff')}, equal labels "
            f"{props.get('onnx.parity.label_agreement')}; onnxruntime is {props.get('onnx.speedup.1_row')}x as fast "
            f"for 1 row, {props.get('onnx.speedup.1000_rows')}x for 1,000")
