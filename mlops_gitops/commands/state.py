"""`mlops-gitops state show [ADDRESS]` and `force-unlock ID`."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from mlops_gitops.addresses import Address
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, NotFoundError
from mlops_gitops.textsafe import escape


def state_show(address: str | None = None, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    project = open_project(path)
    with workspace_backend(project, workspace) as (name, backend):
        snap = backend.read()
        holder = backend.lock_holder()
        interrupted = backend.interrupted()
    if address is not None:
        try:
            addr = Address.parse(address)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        res = snap.resources.get(addr)
        if res is None:
            raise NotFoundError(f"{address} is not in workspace '{name}'")
        mask = snap.masker().tree  # secret values and credentials in URLs are never shown
        out(json.dumps({"address": str(addr), "status": res.status, "managed": res.managed,
                        "drifted": res.drifted, "source_file": res.source_file, "spec": mask(res.spec),
                        "derived": mask(res.derived), "created_at": res.created_at, "updated_at": res.updated_at,
                        "provenance": mask(res.provenance),
                        "files": [{"path": f.rel, "sha256": f.sha256, "size": f.size} for f in res.files]},
                       indent=2))
        return EXIT_OK
    resources = sorted(snap.resources.values(), key=lambda r: r.address.sort_key())
    if fmt == "json":
        out(json.dumps({"workspace": name, "location": backend.location, "workspace_id": snap.workspace_id,
                        "serial": snap.serial,
                        "lock": holder.__dict__ if holder else None, "interrupted_applies": interrupted,
                        "resources": [{"address": str(r.address), "status": r.status, "managed": r.managed,
                                       "drifted": r.drifted} for r in resources]}, indent=2))
        return EXIT_OK
    out(f"Workspace '{name}' at {backend.location}")
    if snap.workspace_id is None:
        out("  empty: nothing has been applied yet")
        return EXIT_OK
    out(f"  id {snap.workspace_id}, serial {snap.serial}")
    out(f"  lock: {holder.describe() if holder else 'not locked'}")
    counts = Counter(r.address.kind.value for r in resources)
    out("  resources: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    for r in resources:
        flags = [f for f, on in (("archived", r.status != "active"), ("drifted", r.drifted),
                                 ("outside Git", not r.managed)) if on]
        out(f"    {escape(r.address)}" + (f"  [{', '.join(flags)}]" if flags else ""))
    return EXIT_OK


def force_unlock(lock_id: str, path: str = ".", workspace: str | None = None) -> int:
    project = open_project(path)
    with workspace_backend(project, workspace) as (_, backend):
        holder = backend.force_unlock(lock_id)
    out(f"Workspace unlocked (was: {holder.describe()}).")
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops state show -C example-repo",
                  "mlops-gitops state show online-deployment:cancer/blue -C example-repo")
    a = sub.add_parser("show", help="summary, or one resource in full")
    a.add_argument("address", nargs="?", metavar="ADDRESS",
                   help="one resource: model:cancer-onnx:1, online-endpoint:cancer, traffic:cancer, ... "
                        "(default: the summary)")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops state show --format json -C example-repo",
                  "mlops-gitops state show model:cancer-onnx:1 -C example-repo    # one resource, in JSON")
    a.set_defaults(run=state_show)


def add_unlock_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("lock_id", metavar="LOCK_ID", help="the lock's ID, as a refused apply or `state show` prints it")
    args.workspace(p)
    args.examples(p, "mlops-gitops force-unlock 0b7f9c1e-3d2a-4c5b-9e8f-1a2b3c4d5e6f -C example-repo")
    p.set_defaults(run=force_unlock)
