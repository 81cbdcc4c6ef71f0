"""`mlops-gitops history RESOURCE|FILE`: the workspace change log joined with `git log` of the file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlops_gitops.addresses import Address
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, NotFoundError
from mlops_gitops.spec.references import check_local_path, is_remote
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.state import ChangeRecord
from mlops_gitops.textsafe import escape
from mlops_gitops.vcs.git import FileCommit, file_history


def _target(resource: str, root: Path) -> tuple[Address | None, str | None]:
    candidate = Path(resource)
    if candidate.suffix in (".yml", ".yaml") and (candidate.exists() or (root / candidate).exists()):
        path = candidate if candidate.exists() else root / candidate
        return None, path.resolve().relative_to(root).as_posix()
    try:
        return Address.parse(resource), None
    except ValueError as exc:
        raise ConfigError(f"{exc}; or give the resource's file path") from None


def _resource_paths(project_root: Path, address: Address | None,
                    source_file: str | None) -> tuple[str | None, list[Path]]:
    """The resource's file and the local paths it points at (model folder, code, conda file)."""
    tree = load_tree(project_root)
    res = None
    if source_file is not None:
        res = tree.resource_by_file(source_file)
    elif address is not None:
        res = next((r for r in tree.resources if r.address.unversioned == address.unversioned), None)
    if res is None:
        return source_file, [project_root / source_file] if source_file else []
    paths = [res.doc.path]
    for link in res.links:
        if link.target is None and not is_remote(link.text):
            check = check_local_path(res.base_dir, link.text, project_root)
            if check.exists:
                paths.append(check.resolved)
    return res.file, paths


def history(resource: str, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    project = open_project(path)
    address, source_file = _target(resource, project.root)
    with workspace_backend(project, workspace) as (_, backend):
        records = backend.change_log(address, source_file)
    if source_file is None:
        source_file = next((r.source_file for r in reversed(records) if r.source_file), None)
    source_file, paths = _resource_paths(project.root, address, source_file)
    commits = file_history(paths)
    if not records and not commits:
        raise NotFoundError(f"no history for '{resource}' in this workspace or in Git")
    if fmt == "json":
        out(json.dumps({"resource": resource, "file": source_file,
                        "changes": [_record_json(r) for r in records],
                        "commits": [c.__dict__ for c in commits]}, indent=2))
        return EXIT_OK
    out(_render(resource, source_file, records, commits))
    return EXIT_OK


def _record_json(r: ChangeRecord) -> dict[str, object]:
    return {"at": r.at, "address": str(r.address), "action": r.action, "origin": r.origin,
            "apply_id": r.apply_id, "provenance": r.provenance}


def _render(resource: str, source_file: str | None, records: list[ChangeRecord], commits: list[FileCommit]) -> str:
    by_sha = {c.commit: c for c in commits}
    applied = {str(r.provenance.get("git.commit")) for r in records}
    lines = [escape(f"History of {resource}" + (f" ({source_file})" if source_file else "")), ""]
    lines.append("Workspace changes (newest first):" if records else "No changes recorded in this workspace.")
    for r in reversed(records):
        p = r.provenance
        who = p.get("applied_by", "?")
        how = ["outside Git"] if r.origin == "cli" else []
        if r.apply_id:
            how.append(f"apply {str(r.apply_id)[:8]}")
        elif r.origin != "cli":
            how.append({"run": "job run"}.get(r.origin, r.origin or "no apply"))
        if p.get("git.pr"):
            how.append(f"PR #{p['git.pr']}")
        commit = str(p.get("git.commit") or "")
        lines.append(escape(f"  {r.at[:19]}  {r.action:<8} {r.address}  by {who} ({', '.join(how)})"))
        if commit and commit in by_sha:
            c = by_sha[commit]
            lines.append(escape(f"      commit {commit[:12]} {c.date[:19]} {c.author}: {c.subject}"))
        elif commit and commit != "None":
            msg = str(p.get("git.message") or "").splitlines()[0:1]
            lines.append(escape(f"      commit {commit[:12]} {p.get('git.author', '')}: {msg[0] if msg else ''}"))
        if p.get("git.file_uncommitted"):
            lines.append("      (applied with uncommitted changes to the file)")
    if commits:
        lines += ["", "Git history of the file and the paths it uses (newest first):"]
        for c in commits:
            mark = "applied" if c.commit in applied else "       "
            lines.append(escape(f"  {c.date[:19]}  {mark}  {c.commit[:12]}  {c.author}: {c.subject}"))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resource", help="address (model:NAME[:VERSION], online-endpoint:NAME, ...) or file path")
    args.fmt(p)
    args.workspace(p)
    args.examples(p, "mlops-gitops history model:cancer-onnx -C example-repo",
                  "mlops-gitops history endpoints/cancer.yml --format json -C example-repo")
    p.set_defaults(run=history)
