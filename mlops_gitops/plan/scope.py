"""The scope of one job: the files its run depends on, so that errors elsewhere do not block it.

`job run FILE` runs a job when the job and everything it references are valid; a broken deployment
or a model no run has registered yet, elsewhere in the tree, is listed as a warning instead.
"""

from __future__ import annotations

from mlops_gitops.addresses import Address
from mlops_gitops.diagnostics import Diagnostic, Diagnostics, Severity
from mlops_gitops.plan.desired import DesiredState
from mlops_gitops.spec.config import CONFIG_NAMES
from mlops_gitops.spec.tree import Tree


def job_scope(tree: Tree, desired: DesiredState, job: Address) -> set[str]:
    """Files of the job, of what it depends on (transitively), and of the YAML files they point at."""
    files: set[str] = {*CONFIG_NAMES, ""}  # the configuration, and findings that name no file
    pending, seen = [job], set()
    while pending:
        addr = pending.pop()
        if addr in seen or (res := desired.resources.get(addr)) is None:
            continue
        seen.add(addr)
        files.add(res.source_file)
        pending.extend(res.depends_on)
        spec = desired.by_spec.get(addr)
        if spec is None:
            continue
        files.update(rel for link in spec.links if link.yaml_file
                     and (rel := tree.linked_file(spec, link.text)) is not None)
    return files


def outside_scope_as_warnings(diags: Diagnostics, files: set[str]) -> Diagnostics:
    """The findings, with errors in files outside the scope turned into warnings that say so."""
    out = Diagnostics()
    for d in diags.items:
        if d.severity is Severity.ERROR and d.file not in files:
            d = Diagnostic(d.file, d.line, d.column, d.code, Severity.WARNING,
                           f"{d.message} (not used by this job, so it does not stop the run)")
        out.items.append(d)
    return out
