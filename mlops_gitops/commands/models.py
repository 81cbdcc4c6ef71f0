"""`mlops-gitops model list|show|download|archive|restore` and `search --tag`."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from mlops_gitops.actor import whoami
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_ERROR, EXIT_OK, capability, err, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, NotFoundError, ResourceInUseError
from mlops_gitops.plan.build import live_users, what_uses
from mlops_gitops.plan.desired import DesiredState
from mlops_gitops.state import ActualResource, Snapshot
from mlops_gitops.textsafe import escape


def parse_model_ref(text: str) -> tuple[str, str | None]:
    """NAME, NAME:VERSION, NAME@latest or azureml:NAME:VERSION."""
    text = text.removeprefix("azureml:")
    if "@" in text:
        name, _, label = text.partition("@")
        if label != "latest":
            raise ConfigError(f"unknown label '@{label}' (only @latest)")
        return name, None
    name, _, version = text.partition(":")
    return name, version or None


def _find(snap: Snapshot, ref: str, include_archived: bool = True) -> ActualResource:
    name, version = parse_model_ref(ref)
    if version is None:
        found = snap.latest(Kind.MODEL, name, include_archived=False)
    else:
        found = snap.resources.get(Address(Kind.MODEL, name, version))
    if found is None or (not include_archived and found.status != "active"):
        known = [r.address.version or "" for r in snap.versions(Kind.MODEL, name)]
        hint = f" (versions: {', '.join(known)})" if known else ""
        raise NotFoundError(f"model '{ref}' not found in the workspace{hint}")
    return found


def model_list(path: str = ".", workspace: str | None = None, name: str | None = None, include_archived: bool = False,
               fmt: str = "text") -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        snap = backend.read()
    rows = [r for a, r in sorted(snap.resources.items(), key=lambda kv: kv[0].sort_key())
            if a.kind is Kind.MODEL and (name is None or a.name == name)
            and (include_archived or r.status == "active")]
    if fmt == "json":
        out(json.dumps([_summary(r) for r in rows], indent=2))
        return EXIT_OK
    if not rows:
        out("No models registered.")
        return EXIT_OK
    out(f"{'NAME':<28} {'VERSION':<8} {'STATUS':<9} {'FILES':>5} {'CREATED':<20} TAGS")
    for r in rows:
        tags = escape(",".join(f"{k}={v}" for k, v in sorted((r.spec.get("tags") or {}).items())))
        out(f"{escape(r.address.name):<28} {escape(r.address.version or ''):<8} {r.status:<9} {len(r.files):>5} "
            f"{r.created_at[:19]:<20} {tags}")
    return EXIT_OK


def properties(r: ActualResource) -> dict[str, object]:
    """The spec's properties, plus the run that produced the version and its metrics (kept in provenance,
    which no content hash covers, so a run's numbers never make the tree look out of date)."""
    out: dict[str, object] = dict(r.spec.get("properties") or {})
    if r.provenance.get("run.id"):
        out["run_id"] = r.provenance["run.id"]
        out.update({f"metrics.{k}": v for k, v in (r.provenance.get("run.metrics") or {}).items()})
    if r.provenance.get("conversion"):  # an ONNX conversion's parity and latency, measured at apply
        out["converted_from"] = r.provenance.get("converted_from")
        out.update(r.provenance["conversion"])
    return out


def _summary(r: ActualResource) -> dict[str, object]:
    return {"name": r.address.name, "version": r.address.version, "status": r.status,
            "tags": r.spec.get("tags") or {}, "properties": properties(r),
            "created_at": r.created_at, "files": len(r.files)}


def model_show(ref: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        snap = backend.read()
        r = _find(snap, ref)
    data = {**_summary(r), "type": r.spec.get("type"), "description": r.spec.get("description"),
            "source_file": r.source_file, "content": r.derived.get("paths"), "updated_at": r.updated_at,
            "files": [{"path": f.rel, "sha256": f.sha256, "size": f.size} for f in r.files],
            "feature_importance": r.provenance.get("importance"), "provenance": r.provenance}
    out(json.dumps(snap.masker().tree(data), indent=2))
    return EXIT_OK


def model_download(ref: str, dest: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        r = _find(backend.read(), ref)
        target = backend.export_files(r, Path(dest))
    out(f"Downloaded {r.address} ({len(r.files)} file(s)) to {target}")
    return EXIT_OK


def model_set_status(ref: str, status: str, path: str = ".", workspace: str | None = None) -> int:
    """Archive or restore NAME:VERSION; NAME alone means its latest active version (restore: latest archived)."""
    operation = "model " + ("archive" if status == "archived" else "restore")
    with workspace_backend(open_project(path), workspace) as (_, backend), backend.lock(operation):
        snap = backend.read()
        r = _find_for_status(snap, ref, status)
        if r.status == status:
            out(f"{r.address} is already {status}: nothing to do.")
            return EXIT_OK
        if status == "archived":
            _refuse_live_users(r.address, snap)
        backend.set_status(r.address, status, {"applied_by": whoami()}, None, origin="cli")
    out(f"{r.address}: {status if status == 'archived' else 'restored (active again)'}")
    return EXIT_OK


def _find_for_status(snap: Snapshot, ref: str, status: str) -> ActualResource:
    name, version = parse_model_ref(ref)
    if version is None and status == "active":  # restore NAME: its latest archived version
        archived = [r for r in snap.versions(Kind.MODEL, name) if r.status == "archived"]
        if archived:
            return archived[-1]
    return _find(snap, ref)


def _refuse_live_users(model: Address, snap: Snapshot) -> None:
    users = live_users(model, DesiredState(), snap, set())
    if not users:
        return
    raise ResourceInUseError(f"{model} is in use and cannot be archived: {what_uses(users)}")


def search(tags: list[str], path: str = ".", workspace: str | None = None, kind: str | None = None,
           fmt: str = "text") -> int:
    """Resources carrying every given tag (`key=value`, `TagName=TagValue`, or `key` for any value)."""
    with workspace_backend(open_project(path), workspace) as (_, backend):
        result: set[Address] | None = None
        for tag in tags:
            key, sep, val = tag.partition("=")
            if not key:
                raise ConfigError(f"bad tag filter '{tag}': use key=value")
            found = set(backend.search_tags(key, val if sep else None))
            result = found if result is None else result & found
        snap = backend.read()
    hits = sorted(a for a in (result or set()) if kind is None or a.kind.value == kind)
    if fmt == "json":
        out(json.dumps([{"address": str(a), "status": snap.resources[a].status,
                         "tags": snap.resources[a].spec.get("tags") or {}} for a in hits], indent=2))
    else:
        out("\n".join(escape(a) for a in hits) if hits else "No resources match.")
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops model list -C example-repo", "mlops-gitops model show cancer-onnx:1 -C example-repo")
    a = sub.add_parser("list", help="list model versions")
    args.workspace(a)
    a.add_argument("--name", help="only the versions of this model")
    a.add_argument("--include-archived", action="store_true", help="also archived versions (default: active only)")
    args.fmt(a)
    args.examples(a, "mlops-gitops model list -C example-repo",
                  "mlops-gitops model list --name cancer-onnx --include-archived --format json -C example-repo")
    a.set_defaults(run=model_list)
    for action, text, run, extra, lines in (
            ("show", "show one version (NAME[:VERSION])", model_show, {},
             ("mlops-gitops model show cancer-onnx:1 -C example-repo",
              "mlops-gitops model show cancer-classifier -C example-repo   # the latest version")),
            ("archive", "archive NAME:VERSION (NAME alone: its latest active version)", model_set_status,
             {"status": "archived"},
             ("mlops-gitops model archive cancer-classifier:1 -C example-repo",)),
            ("restore", "restore an archived NAME:VERSION (NAME alone: its latest archived version)",
             model_set_status, {"status": "active"},
             ("mlops-gitops model restore cancer-classifier:1 -C example-repo",))):
        a = sub.add_parser(action, help=text)
        if action == "show":
            a.add_argument("ref", metavar="NAME[:VERSION]", help="NAME:VERSION, or NAME for the latest version")
        else:
            a.add_argument("ref", metavar="NAME[:VERSION]", help=(
                "the model version; NAME alone: its latest active version (no live deployment may use it)"
                if action == "archive" else "the model version; NAME alone: its latest archived version"))
        args.workspace(a)
        args.examples(a, *lines)
        a.set_defaults(run=run, **extra)
    a = sub.add_parser("download", help="download all files of NAME[:VERSION]")
    a.add_argument("ref", metavar="NAME[:VERSION]", help="NAME:VERSION, or NAME for the latest version")
    a.add_argument("--dir", dest="dest", default=".", help="download into DIR/NAME/VERSION (default: current folder)")
    args.workspace(a)
    args.examples(a, "mlops-gitops model download cancer-onnx:1 -C example-repo",
                  "mlops-gitops model download cancer-classifier --dir /tmp/models -C example-repo")
    a.set_defaults(run=model_download)
    a = sub.add_parser("convert", help="convert NAME[:VERSION] to ONNX ad hoc: parity and latency report, nothing "
                                       "registered")
    a.add_argument("ref", metavar="NAME[:VERSION]", help="the source model version (a pickled estimator, or an "
                                                         "MLflow model of the sklearn flavour)")
    a.add_argument("--sample-data", metavar="DATA", help="data asset whose rows the parity check scores "
                                                         "(azureml:NAME:VERSION; default: the training data of the "
                                                         "source's run)")
    a.add_argument("--rows", type=int, default=200, help="rows drawn from the sample (default 200)")
    a.add_argument("--drop-column", dest="drop_columns", action="append", metavar="COLUMN",
                   help="a column of the sample that is not a feature, such as the label (repeat)")
    a.add_argument("--converter", choices=["auto", "skl2onnx", "onnxmltools"], default="auto",
                   help="auto: skl2onnx for scikit-learn, onnxmltools for LightGBM and XGBoost")
    a.add_argument("--requirement", dest="requirements", action="append", metavar="REQ",
                   help="a package the conversion environment needs besides the converters (repeat)")
    a.add_argument("--max-abs-diff", type=float, default=1e-4, help="tolerance of output differences (1e-4)")
    a.add_argument("--min-label-agreement", type=float, default=1.0, help="share of equal labels required (1.0)")
    a.add_argument("--output", "-o", metavar="DIR", help="also copy model.onnx and the report into DIR")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops model convert cancer-sklearn:1 --sample-data azureml:breast-cancer-train:1 "
                     "--drop-column target -C example-repo",
                  "mlops-gitops model convert cancer-sklearn:1 --sample-data azureml:breast-cancer-train:1 "
                  "--drop-column target --output /tmp/onnx --format json -C example-repo")
    a.set_defaults(run=model_convert)


def model_convert(ref: str, sample_data: str | None = None, rows: int = 200, drop_columns: list[str] | None = None,
                  converter: str = "auto", requirements: list[str] | None = None, max_abs_diff: float = 1e-4,
                  min_label_agreement: float = 1.0, output: str | None = None, path: str = ".",
                  workspace: str | None = None, fmt: str = "text") -> int:
    """Convert a registered version to ONNX ad hoc and print the parity report; nothing is registered."""
    declaration = {"converter": converter, "requirements": list(requirements or []),
                   "sample": {"rows": rows, "drop_columns": list(drop_columns or [])},
                   "tolerance": {"max_abs_diff": max_abs_diff, "min_label_agreement": min_label_agreement}}
    data = sample_data.removeprefix("azureml:") if sample_data else None
    with workspace_backend(open_project(path), workspace) as (_, backend):
        found = _find(backend.read(), ref)
        if data is not None and ":" not in data:  # a data asset by name: its latest version
            name = data.partition("@")[0]
            latest = backend.read().latest(Kind.DATA, name)
            if latest is None:
                raise NotFoundError(f"--sample-data {sample_data}: no data asset '{name}' in the workspace")
            data = f"{name}:{latest.address.version}"
        report = capability(backend, "convert_model", "convert models")(found.address, declaration, data)
    if output is not None:
        dest = Path(output)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "conversion_report.json"):
            shutil.copyfile(Path(report["folder"]) / name, dest / name)
    if fmt == "json":
        out(json.dumps(report, indent=2))
    else:
        _print_report(found.address, report, output)
    return EXIT_OK if report.get("within_tolerance") else EXIT_ERROR


def _print_report(address: Address, report: dict[str, Any], output: str | None) -> None:
    latency = report.get("latency_ms") or {}
    agreement = report.get("label_agreement")
    out(escape(f"{address} ({report.get('estimator')}) converted with {report.get('converter')}"))
    out(f"  parity on {report.get('rows')} sample rows: largest absolute difference "
        f"{report.get('max_abs_diff'):.3g}" + (f", equal labels {agreement:.2%}" if agreement is not None else ""))
    for rows in ("1_row", "1000_rows"):
        source, onnx = latency.get(f"source_{rows}"), latency.get(f"onnx_{rows}")
        if source and onnx:
            out(f"  latency, {rows.replace('_', ' ')}: source {source:.4f} ms, onnxruntime {onnx:.4f} ms "
                f"({source / onnx:.1f}x)")
    for problem in report.get("outside_tolerance") or []:
        err(escape(f"outside the tolerance: {problem}"))
    out(escape(f"  files: {output or report.get('folder')} (model.onnx, conversion_report.json); nothing was "
               "registered (declare x-gitops.convert in a model file to register the conversion)"))


def add_search_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tag", dest="tags", action="append", required=True, metavar="KEY[=VALUE]",
                   help="a tag the resources carry (KEY alone: any value); repeat to require all (required)")
    p.add_argument("--kind", help="only resources of this kind (model, data, environment, online-endpoint, ...)")
    args.fmt(p)
    args.workspace(p)
    args.examples(p, "mlops-gitops search --tag framework=onnx -C example-repo",
                  "mlops-gitops search --tag task=classification --tag framework --kind model -C example-repo")
    p.set_defaults(run=search)
