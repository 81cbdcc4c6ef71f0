"""Turn the loaded tree into desired resources: concrete versions, content hashes, resolved references."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops import versioning
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.fsutil import UnsafePathError
from mlops_gitops.hashing import content_summary, path_manifest, spec_hash, versioned_content
from mlops_gitops.kinds import VERSIONED, rank
from mlops_gitops.spec.references import (
    JobOutputRef,
    check_local_path,
    is_remote,
    parse_asset_ref,
    parse_job_output,
    resolved_job_output,
)
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.spec.tree import Tree
from mlops_gitops.state import ArtifactFile, DesiredResource, Snapshot, run_output_files

TRAFFIC_FIELDS = ("traffic", "mirror_traffic")


@dataclass
class DesiredState:
    resources: dict[Address, DesiredResource] = field(default_factory=dict)
    by_spec: dict[Address, SpecResource] = field(default_factory=dict)  # keyed by concrete address
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    # A folder used by several resources (a shared src/) is hashed once per plan.
    manifests: dict[Path, list[tuple[str, str, int]]] = field(default_factory=dict)
    boundary: Path | None = None  # where paths may lead (the Git work tree); the tree's root when None

    def manifest(self, path: Path, root: Path) -> list[tuple[str, str, int]]:
        if path not in self.manifests:
            self.manifests[path] = path_manifest(path, root)
        return self.manifests[path]

    def names(self) -> set[tuple[Kind, str]]:
        return {(a.kind, a.name) for a in self.resources}


def _loc_key(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _hash_paths(state: DesiredState, res: SpecResource, root: Path,
                boundary: Path | None = None) -> tuple[dict[str, Any], list[ArtifactFile]]:
    boundary = boundary or root
    """Content hashes of every local path the resource points at, and the files to store."""
    derived: dict[str, Any] = {}
    artifacts: list[ArtifactFile] = []
    whole_asset = res.kind in (Kind.MODEL, Kind.DATA)
    for link in res.links:
        if link.role not in ("path", "code", "conda_file", "data") or link.target is not None:
            continue
        if is_remote(link.text) or link.text.startswith("${{"):
            continue
        check = check_local_path(res.base_dir, link.text, boundary)
        if whole_asset and link.loc == ("path",) and check.inside and check.resolved.is_relative_to(root):
            tracked = _dvc(state, res, check.resolved, root)
            if tracked is not None:  # versioned by DVC's hash; the data itself may be fetched at apply
                derived["path"] = tracked
                if not check.exists:
                    continue
        if not check.exists:
            continue
        try:
            manifest = state.manifest(check.resolved, boundary)
        except UnsafePathError as exc:  # validate says so first, with the entry; a file changed since
            line, col = res.pos(link.loc)
            state.diagnostics.add(res.file, line, col, "PATH001", str(exc))
            continue
        is_dir = check.resolved.is_dir()
        if _loc_key(link.loc) not in derived:
            derived[_loc_key(link.loc)] = content_summary(manifest, is_dir)
        prefix = "" if whole_asset and link.loc == ("path",) else _loc_key(link.loc) + "/"
        base = check.resolved if is_dir else check.resolved.parent
        for rel, digest, size in manifest:
            artifacts.append(ArtifactFile(prefix + rel, digest, size, base / rel))
    return derived, artifacts


def _dvc(state: DesiredState, res: SpecResource, path: Path, root: Path) -> dict[str, Any] | None:
    from mlops_gitops.vcs.dvc import DvcError, matches, might_be_tracked, tracked

    if not might_be_tracked(path):
        return None
    line, col = res.pos(("path",))
    try:
        t = tracked(path)
    except DvcError as exc:
        state.diagnostics.add(res.file, line, col, "DVC001", str(exc))
        return None
    if t is None:
        return None
    if path.exists() and not matches(t, path):
        state.diagnostics.add(res.file, line, col, "DVC002",
                              f"{t.rel} differs from what DVC recorded (md5 {t.md5}): run `dvc add {t.rel}` to "
                              "record the new data (or `dvc checkout` to discard the change)")
    return {"dvc": t.md5, "files": t.nfiles or 1, "bytes": t.size or 0,
            "tracked": path.relative_to(root.resolve()).as_posix()}


def _user_spec(res: SpecResource) -> dict[str, Any]:
    spec = res.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    spec.pop("$schema", None)
    if res.kind is Kind.ONLINE_ENDPOINT:
        for key in TRAFFIC_FIELDS:
            spec.pop(key, None)
    return spec


def _content(spec: dict[str, Any], derived: dict[str, Any], kind: Kind) -> str:
    if kind in VERSIONED:
        return versioned_content(spec, derived)
    return spec_hash({"spec": spec, "derived": derived})


def build_desired(tree: Tree, snapshot: Snapshot) -> DesiredState:
    state = DesiredState(boundary=tree.boundary)
    versioned = [r for r in tree.resources if r.kind in VERSIONED]
    others = [r for r in tree.resources if r.kind not in VERSIONED]
    explicit_numbers: dict[tuple[Kind, str], int] = {}
    for res in versioned:
        if (n := versioning.number(res.version)) is not None:
            key = (res.kind, res.name)
            explicit_numbers[key] = max(explicit_numbers.get(key, 0), n)
    # Components resolve the environments and data they name, so those get their versions first; a
    # pipeline component comes after the component files its steps name.
    depth = _component_depths(tree)
    # An ONNX conversion comes after the models (its source, named @latest too) are versioned.
    for res in sorted(versioned, key=lambda r: (rank(r.kind), _converts(r), depth.get(r.file, 0))):
        _add_versioned(state, res, tree.root, snapshot, explicit_numbers)
    for res in others:
        _add_other(state, res, tree.root, snapshot)
    _link_dependencies(state, snapshot)
    return state


def _converts(res: SpecResource) -> bool:
    ext = getattr(res.model, "x_gitops", None)
    return ext is not None and getattr(ext, "convert", None) is not None


def _component_depths(tree: Tree) -> dict[str, int]:
    """How deep each component file nests other component files of the tree (0: names none)."""
    by_file = {r.file: r for r in tree.resources if r.kind is Kind.COMPONENT}
    depths: dict[str, int] = {}

    def depth(rel: str, seen: frozenset[str]) -> int:
        if rel in depths:
            return depths[rel]
        res = by_file[rel]
        found = 0
        for link in res.links:
            if link.role == "component" and link.target is None:
                inner = tree.linked_file(res, link.text)
                if inner in by_file and inner not in seen:  # a cycle is the pipeline compiler's to report
                    found = max(found, depth(inner, seen | {inner}) + 1)
        depths[rel] = found
        return found

    for rel in by_file:
        depth(rel, frozenset({rel}))
    return depths


def _add_versioned(state: DesiredState, res: SpecResource, root: Path, snapshot: Snapshot,
                   explicit_numbers: dict[tuple[Kind, str], int]) -> None:
    spec = _user_spec(res)
    paths, artifacts = _hash_paths(state, res, root, state.boundary)
    refs, deps, floating = _resolve_refs(state, res, snapshot, root)
    job_output = resolved_job_output(refs.get("path"))
    if job_output is not None:  # the files come from the job's latest completed run, if there is one
        paths, artifacts = _from_run(snapshot, job_output)
    derived: dict[str, Any] = {"paths": paths} if paths else {}
    if refs:
        derived["refs"] = refs
    content = _content(spec, derived, res.kind)
    auto = res.version is None
    if auto:  # above the numbers other files of the tree give the same name explicitly
        version = versioning.auto_version(snapshot, res.kind, res.name, content,
                                          at_least=explicit_numbers.get((res.kind, res.name), 0))
    else:
        version = res.version or ""
        actual = snapshot.resources.get(Address(res.kind, res.name, version))
        if actual is not None and actual.content_hash != content:
            line, col = res.pos(("version",))
            state.diagnostics.add(
                res.file, line, col, "VER001",
                f"{res.kind.value} '{res.name}' version {version} was applied with different content; "
                "versions are immutable: bump the version (or remove 'version' to number it automatically)")
    spec["version"] = version
    addr = Address(res.kind, res.name, version)
    state.resources[addr] = DesiredResource(
        address=addr, spec=spec, derived=derived, content_hash=content,
        spec_hash=spec_hash({"spec": spec, "derived": derived}), source_file=res.file, source_line=res.pos()[0],
        schema_name=res.info.schema_name, auto_version=auto, artifacts=artifacts, depends_on=deps,
        floating=floating)
    state.by_spec[addr] = res


def _from_run(snapshot: Snapshot, ref: JobOutputRef) -> tuple[dict[str, Any], list[ArtifactFile]]:
    _, files = run_output_files(snapshot.job_outputs, ref.job, ref.output, ref.subpath)
    if not files:
        return {}, []
    return {"path": content_summary([(f.rel, f.sha256, f.size) for f in files], True)}, files


def _resolve_refs(state: DesiredState, res: SpecResource, snapshot: Snapshot,
                  root: Path) -> tuple[dict[str, str], set[Address], dict[str, str]]:
    """References pinned to versions, what they depend on, and which of them were @latest (key -> name)."""
    refs: dict[str, str] = {}
    deps: set[Address] = set()
    floating: dict[str, str] = {}
    for link in res.links:
        if link.role == "job_output":
            job_ref = parse_job_output(link.text)
            if job_ref is not None:
                refs[_loc_key(link.loc)] = str(job_ref)
                deps.add(Address(Kind.JOB, job_ref.job))
            continue
        if link.role == "component" and link.target is None:  # a component file in the tree
            comp = _component_by_file(state, res, link.text, root)
            if comp is not None:
                refs[_loc_key(link.loc)] = f"{comp.name}:{comp.version}"
                deps.add(comp)
            continue
        ref = parse_asset_ref(link.text) if link.target is not None else None
        if link.role == "endpoint" and link.target is not None:
            deps.add(Address(link.target, link.text))
            continue
        if ref is None or link.target is None:
            continue
        if link.target is Kind.ONLINE_DEPLOYMENT:
            deps.add(Address(Kind.ONLINE_DEPLOYMENT, f"{ref.name}/{ref.version}"))
            continue
        if link.target not in VERSIONED:
            deps.add(Address(link.target, ref.name))
            continue
        version = ref.version
        if version is None:  # @latest (or a bare name): pin to what will be latest after apply
            floating[_loc_key(link.loc)] = ref.name
            desired = [a for a in state.resources if a.kind is link.target and a.name == ref.name]
            if desired:
                version = max(desired, key=lambda a: a.sort_key()).version
            else:
                latest = snapshot.latest(link.target, ref.name)
                version = latest.address.version if latest else None
        if version is not None:
            refs[_loc_key(link.loc)] = f"{ref.name}:{version}"
            deps.add(Address(link.target, ref.name, version))
    return refs, deps, floating


def _component_by_file(state: DesiredState, res: SpecResource, text: str, root: Path) -> Address | None:
    check = check_local_path(res.base_dir, text, root)
    if not check.exists:
        return None
    rel = check.resolved.relative_to(root).as_posix()
    return next((a for a, r in state.by_spec.items() if r.file == rel and a.kind is Kind.COMPONENT), None)


def _add_other(state: DesiredState, res: SpecResource, root: Path, snapshot: Snapshot) -> None:
    spec = _user_spec(res)
    paths, artifacts = _hash_paths(state, res, root, state.boundary)
    refs, deps, floating = _resolve_refs(state, res, snapshot, root)
    derived: dict[str, Any] = {}
    if paths:
        derived["paths"] = paths
    if refs:
        derived["refs"] = refs
    digest = spec_hash({"spec": spec, "derived": derived})
    addr = Address(res.kind, res.name)
    state.resources[addr] = DesiredResource(
        address=addr, spec=spec, derived=derived, content_hash=digest, spec_hash=digest, source_file=res.file,
        source_line=res.pos()[0], schema_name=res.info.schema_name, artifacts=artifacts, depends_on=deps,
        floating=floating)
    state.by_spec[addr] = res
    model: Any = res.model
    if res.kind is Kind.ONLINE_ENDPOINT and model.traffic is not None:
        tspec = {"traffic": dict(model.traffic), "mirror_traffic": dict(model.mirror_traffic or {})}
        if model.x_gitops is not None and model.x_gitops.rollout is not None:  # how the split moves, at apply
            tspec["rollout"] = model.x_gitops.rollout.model_dump(mode="json", exclude_none=True)
        taddr = Address(Kind.TRAFFIC, res.name)
        thash = spec_hash({"spec": tspec})
        state.resources[taddr] = DesiredResource(
            address=taddr, spec=tspec, derived={}, content_hash=thash, spec_hash=thash, source_file=res.file,
            source_line=res.pos(("traffic",))[0], schema_name="traffic", depends_on={addr})
        state.by_spec[taddr] = res


def _link_dependencies(state: DesiredState, snapshot: Snapshot) -> None:
    """Traffic waits for every deployment of its endpoint; batch endpoints for a new default deployment."""
    for addr, desired in state.resources.items():
        if addr.kind is Kind.TRAFFIC:
            desired.depends_on |= {a for a in state.resources
                                   if a.kind is Kind.ONLINE_DEPLOYMENT and a.name.startswith(addr.name + "/")}
        elif addr.kind is Kind.BATCH_ENDPOINT:
            default = (desired.spec.get("defaults") or {}).get("deployment_name")
            dep = Address(Kind.BATCH_DEPLOYMENT, f"{addr.name}/{default}") if default else None
            endpoint_exists = Address(Kind.BATCH_ENDPOINT, addr.name) in snapshot.resources
            if dep is not None and dep in state.resources and endpoint_exists:
                desired.depends_on.add(dep)
