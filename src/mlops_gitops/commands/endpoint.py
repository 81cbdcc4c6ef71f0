"""`mlops-gitops endpoint list|show|set-traffic`: read endpoints; change traffic outside Git (shows as drift)."""

from __future__ import annotations

import json
from typing import Any

from mlops_gitops.actor import whoami
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, NotFoundError
from mlops_gitops.hashing import spec_hash


def parse_traffic(pairs: list[str]) -> dict[str, int]:
    traffic: dict[str, int] = {}
    for pair in pairs:
        name, sep, pct = pair.partition("=")
        if not sep or not name or not pct.strip().isdigit():
            raise ConfigError(f"bad traffic entry '{pair}': use DEPLOYMENT=PERCENT, e.g. blue=90")
        traffic[name] = int(pct)
    return traffic


def set_traffic(endpoint: str, pairs: list[str], path: str = ".", workspace: str | None = None) -> int:
    traffic = parse_traffic(pairs)
    total = sum(traffic.values())
    if total not in (0, 100):
        raise ConfigError(f"traffic sums to {total}; it must sum to 100 (or 0)")
    project = open_project(path)
    with workspace_backend(project, workspace) as (_, backend), backend.lock("set-traffic"):
        snap = backend.read()
        addr = Address(Kind.TRAFFIC, endpoint)
        if Address(Kind.ONLINE_ENDPOINT, endpoint) not in snap.resources:
            raise NotFoundError(f"online endpoint '{endpoint}' does not exist in the workspace")
        deployments = {a.name.split("/", 1)[1] for a in snap.resources
                       if a.kind is Kind.ONLINE_DEPLOYMENT and a.name.startswith(endpoint + "/")}
        unknown = sorted(set(traffic) - deployments)
        if unknown:
            raise NotFoundError(f"endpoint '{endpoint}' has no deployment(s) {', '.join(unknown)} "
                                f"(deployments: {', '.join(sorted(deployments)) or 'none'})")
        current = snap.resources.get(addr)
        if current is None:
            raise NotFoundError(f"endpoint '{endpoint}' has no traffic managed yet; apply the repository first")
        spec = {**current.spec, "traffic": traffic}
        backend.set_spec(addr, spec, spec_hash({"spec": spec}), {"applied_by": whoami()})
    out(f"Traffic of endpoint '{endpoint}' set to " + ", ".join(f"{k}={v}" for k, v in traffic.items()) +
        " (outside the repository: `mlops-gitops plan` will show it as drift)")
    return EXIT_OK


def endpoint_list(path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    project = open_project(path)
    with workspace_backend(project, workspace) as (_, backend):
        snap = backend.read()
    rows: list[dict[str, Any]] = []
    for addr, res in sorted(snap.resources.items(), key=lambda kv: kv[0].sort_key()):
        if addr.kind in (Kind.ONLINE_ENDPOINT, Kind.BATCH_ENDPOINT):
            traffic = snap.resources.get(Address(Kind.TRAFFIC, addr.name))
            deps = sorted(a.name.split("/", 1)[1] for a in snap.resources
                          if a.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT)
                          and a.name.startswith(addr.name + "/"))
            rows.append({"name": addr.name, "kind": addr.kind.value, "deployments": deps,
                         "traffic": (traffic.spec.get("traffic") if traffic and addr.kind is Kind.ONLINE_ENDPOINT
                                     else None),
                         "default_deployment": (res.spec.get("defaults") or {}).get("deployment_name")})
    if fmt == "json":
        out(json.dumps(rows, indent=2))
    elif not rows:
        out("No endpoints.")
    else:
        for r in rows:
            extra = (f"traffic {r['traffic']}" if r["traffic"] is not None else
                     f"default {r['default_deployment']}" if r["default_deployment"] else "")
            out(f"{r['kind']:<16} {r['name']:<24} deployments: {', '.join(r['deployments']) or '-'}  {extra}")
    return EXIT_OK
