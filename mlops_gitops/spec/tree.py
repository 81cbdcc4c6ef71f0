"""Find the repository root, discover its YAML files and load them into typed resources."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Diagnostics, Severity
from mlops_gitops.fsutil import scan
from mlops_gitops.spec import catalog
from mlops_gitops.spec.config import CONFIG_NAMES, RepoConfig
from mlops_gitops.spec.globs import Glob
from mlops_gitops.spec.parsecache import ParseCache
from mlops_gitops.spec.references import check_local_path
from mlops_gitops.spec.resource import SpecResource, compute_links
from mlops_gitops.spec.typed import validate_document
from mlops_gitops.spec.yamlload import Document, load_file

SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "dist-packages"}
AZURE_SCHEMAS = "https://azuremlschemas.azureedge.net/latest"


def _skipped_dir(parent: str, name: str) -> bool:
    """Hidden folders, package folders and whole Python environments (a venv by any name, a conda env)."""
    if name.startswith(".") or name in SKIP_DIRS:
        return True
    folder = os.path.join(parent, name)
    return os.path.isfile(os.path.join(folder, "pyvenv.cfg")) or os.path.isdir(os.path.join(folder, "conda-meta"))


@dataclass
class Tree:
    root: Path  # the folder whose YAML files are the desired state
    config: RepoConfig
    config_file: str | None
    resources: list[SpecResource] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every YAML file the globs selected
    documents: dict[str, Document] = field(default_factory=dict)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    _by_file: dict[str, SpecResource] = field(default_factory=dict, repr=False)
    boundary_: Path | None = None  # where paths may lead: the Git work tree holding root (root outside Git)

    @property
    def boundary(self) -> Path:
        return self.boundary_ or self.root

    def resource_by_file(self, rel: str) -> SpecResource | None:
        if len(self._by_file) != len(self.resources):  # rebuilt while the tree is being loaded
            self._by_file = {res.file: res for res in self.resources}
        return self._by_file.get(rel)

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def linked_file(self, res: SpecResource, text: str) -> str | None:
        """The file of the tree that a local path written in res names (None when it leaves the tree)."""
        check = check_local_path(res.base_dir, text, self.root)
        return check.resolved.relative_to(self.root).as_posix() if check.inside else None


def find_config(start: Path) -> Path | None:
    """The nearest folder at or above start holding mlops.yaml, not leaving the Git work tree."""
    cur = start.resolve()
    while True:
        if any((cur / name).is_file() for name in CONFIG_NAMES):
            return cur
        if (cur / ".git").exists() or cur.parent == cur:
            return None
        cur = cur.parent


def find_root(path: Path) -> Path:
    path = path.resolve()
    start = path if path.is_dir() else path.parent
    found = find_config(start)
    if found is not None:
        return found
    if path.is_dir():
        return path
    cur = start
    while cur.parent != cur:
        if (cur / ".git").exists():
            return cur
        cur = cur.parent
    cwd = Path.cwd().resolve()
    return cwd if path.is_relative_to(cwd) else start


def load_config(root: Path, diags: Diagnostics) -> tuple[RepoConfig, str | None]:
    for name in CONFIG_NAMES:
        path = root / name
        if path.is_file():
            doc = load_file(path, name, diags)
            if doc is None:
                return RepoConfig(), name
            if doc.data is None:
                return RepoConfig(), name
            if not isinstance(doc.data, dict):
                diags.add(name, 1, 1, "CONFIG001", "mlops.yaml must be a mapping")
                return RepoConfig(), name
            config = validate_document(RepoConfig, doc, diags, strict=True) or RepoConfig()
            config._source = (name, doc.positions)
            return config, name
    return RepoConfig(), None


def discover(root: Path, config: RepoConfig) -> list[str]:
    include = [Glob(p) for p in config.include]
    exclude = [Glob(p) for p in config.exclude]
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped_dir(dirpath, d))
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel in CONFIG_NAMES:
                continue
            if any(p.match(rel) for p in include) and not any(p.match(rel) for p in exclude):
                found.append(rel)
    return found


def _typed(doc: Document, strict: bool, diags: Diagnostics) -> SpecResource | bool | None:
    """A resource, None for an invalid resource, or False when the file declares no known kind."""
    data = doc.data
    schema = data.get("$schema") if isinstance(data, dict) else None
    if schema is None:
        return False
    if not isinstance(schema, str):
        line, col = doc.pos(("$schema",))
        diags.add(doc.rel, line, col, "SCHEMA002", "$schema must be a string URL or path")
        return None
    info = catalog.lookup(schema)
    if info is None:
        line, col = doc.pos(("$schema",))
        if catalog.is_not_run(schema):
            diags.add(doc.rel, line, col, "SCHEMA003",
                      f"a {catalog.schema_basename(schema)} is not run in the local workspace; file skipped",
                      Severity.WARNING)
        elif catalog.is_unmanaged(schema):
            diags.add(doc.rel, line, col, "SCHEMA003",
                      f"kind '{catalog.schema_basename(schema)}' is not managed by mlops-gitops; file skipped",
                      Severity.WARNING)
        else:
            known = ", ".join(catalog.known_schema_names())
            diags.add(doc.rel, line, col, "SCHEMA002", f"unknown $schema '{schema}' (known kinds: {known})")
        return None
    model = validate_document(info.model, doc, diags, strict)
    if model is None:
        return None
    res = SpecResource(info, doc, model)
    res.links = compute_links(res)
    return res


def work_tree(path: Path) -> Path:
    """The Git work tree holding path (the nearest folder above with a .git entry), else path itself: paths
    in resource files may leave the tree (Azure's examples reference ../../model-1/) but not this."""
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return path


def load_tree(root: Path, strict: bool = False) -> Tree:
    root = root.resolve()
    tree_diags = Diagnostics()
    config, config_file = load_config(root, tree_diags)
    strict = strict or config.strict
    tree = Tree(root, config, config_file, diagnostics=tree_diags, boundary_=work_tree(root))
    files = discover(root, config)
    tree.files = files

    without_schema: list[Document] = []
    cache = ParseCache(root)
    for rel in files:
        if (root / rel).is_symlink():  # a link is read only when it stays inside the repository
            _, problems = scan(root / rel, root)
            if problems:
                tree.diagnostics.add(rel, 1, 1, problems[0].code, problems[0].describe(rel))
                continue
        doc = load_file(root / rel, rel, tree.diagnostics, cache)
        if doc is not None:
            tree.documents[doc.rel] = doc
    cache.save()
    unplaced = _infer_endpoint_names(list(tree.documents.values()), tree.diagnostics)
    for doc in tree.documents.values():
        if doc.rel in unplaced:
            continue
        result = _typed(doc, strict, tree.diagnostics)
        if result is False:
            without_schema.append(doc)
        elif isinstance(result, SpecResource):
            tree.resources.append(result)
    referenced = _referenced_yaml(tree)
    for doc in without_schema:
        if doc.rel in referenced:
            continue
        kinds = likely_kind(doc.data)
        if not kinds:
            continue  # other YAML (CI pipelines, conda files, configs): not an Azure ML resource, skipped
        urls = " or ".join(f"`$schema: {AZURE_SCHEMAS}/{k}.schema.json`" for k in kinds)
        nouns = " or ".join("data asset" if k == "data" else k for k in kinds)
        tree.diagnostics.add(
            doc.rel, 1, 1, "SCHEMA001",
            f"no $schema, so the file is skipped, but it looks like {_a(nouns)}: add {urls}, or "
            "exclude it in mlops.yaml", Severity.WARNING)
    return tree


_ENDPOINT_OF = {Kind.ONLINE_DEPLOYMENT: Kind.ONLINE_ENDPOINT, Kind.BATCH_DEPLOYMENT: Kind.BATCH_ENDPOINT}


def _kind(doc: Document) -> Kind | None:
    """The kind a document's `$schema` names, as the catalog reads it (aliases and SDK names included)."""
    schema = doc.data.get("$schema") if isinstance(doc.data, dict) else None
    info = catalog.lookup(schema) if isinstance(schema, str) else None
    return info.kind if info is not None else None


def _infer_endpoint_names(docs: list[Document], diags: Diagnostics) -> set[str]:
    """A deployment without `endpoint_name` belongs to the one endpoint declared in its folder, as the
    `az ml online-deployment create --endpoint-name` of Azure's examples supplies it. Returns the files
    whose endpoint cannot be inferred (reported; not loaded further)."""
    endpoints: dict[tuple[str, Kind], list[str]] = {}
    for doc in docs:
        kind = _kind(doc)
        name = doc.data.get("name") if kind in _ENDPOINT_OF.values() and isinstance(doc.data, dict) else None
        if isinstance(name, str) and kind is not None:
            endpoints.setdefault((posixpath.dirname(doc.rel), kind), []).append(name)
    unplaced: set[str] = set()
    for doc in docs:
        kind = _kind(doc)
        endpoint_kind = _ENDPOINT_OF.get(kind) if kind is not None else None
        if endpoint_kind is None or not isinstance(doc.data, dict) or "endpoint_name" in doc.data:
            continue
        family = "online" if endpoint_kind is Kind.ONLINE_ENDPOINT else "batch"
        folder = posixpath.dirname(doc.rel)
        found = sorted(set(endpoints.get((folder, endpoint_kind), [])))
        if len(found) == 1:
            doc.data["endpoint_name"] = found[0]
            continue
        where = f"folder '{folder or '.'}'"
        why = f"{where} declares several {family} endpoints ({', '.join(found)})" if found else \
            f"{where} declares no {family} endpoint"
        diags.add(doc.rel, 1, 1, "REF004", f"the deployment names no endpoint_name and its {why}: set endpoint_name")
        unplaced.add(doc.rel)
    return unplaced


def likely_kind(data: object) -> tuple[str, ...]:
    """The kinds (schema names) a YAML file without `$schema` seems to be (a resource that lost it), else ()."""
    if not isinstance(data, dict):
        return ()
    keys = set(data)
    if "jobs" in keys and data.get("type") == "pipeline":
        return ("pipelineJob", "pipelineComponent")
    if "command" in keys and keys & {"environment", "code", "inputs", "outputs"}:
        return ("commandJob", "commandComponent")
    if "endpoint_name" in keys and keys & {"model", "code_configuration", "environment", "component"}:
        return ("managedOnlineDeployment", "batchDeployment")
    if "trigger" in keys and keys & {"create_job", "create_monitor"}:
        return ("schedule",)
    if "auth_mode" in keys and "name" in keys:
        return ("managedOnlineEndpoint",)
    if "name" in keys and keys & {"conda_file", "image", "build"} and "path" not in keys:
        return ("environment",)
    if "name" in keys and "path" in keys:
        kind = str(data.get("type", ""))
        return ("data",) if kind in ("uri_file", "uri_folder", "mltable") else ("model", "data")
    return ()


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _referenced_yaml(tree: Tree) -> set[str]:
    """Files that resources point at as YAML (conda files, component and job files), followed through
    component files that carry no `$schema` of their own (they may name conda files in turn)."""
    out: set[str] = set()
    pending = list(tree.resources)
    seen_anonymous: set[str] = set()
    while pending:
        res = pending.pop()
        for link in res.links:
            if not (link.yaml_file or link.role in ("conda_file", "code", "path")):
                continue
            check = check_local_path(res.base_dir, link.text, tree.root)
            if not check.inside:
                continue
            rel = check.resolved.relative_to(tree.root).as_posix()
            out.add(rel)
            if check.resolved.is_dir():
                out.update(r for r in tree.documents if r.startswith(rel + "/"))
            elif link.role == "component" and rel not in seen_anonymous and tree.resource_by_file(rel) is None:
                seen_anonymous.add(rel)
                anonymous = _anonymous_component(tree, rel)
                if anonymous is not None:
                    pending.append(anonymous)
    return out


def _anonymous_component(tree: Tree, rel: str) -> SpecResource | None:
    doc = tree.documents.get(rel)
    if doc is None or not isinstance(doc.data, dict):
        return None
    info = catalog.CATALOG["commandComponent"]
    model = validate_document(info.model, doc, Diagnostics(), strict=False)  # rules report its errors
    if model is None:
        return None
    res = SpecResource(info, doc, model)
    res.links = compute_links(res)
    return res
