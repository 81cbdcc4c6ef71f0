"""`mlops-gitops endpoint …`: list, show, invoke, logs, keys; set-traffic changes traffic outside Git (drift)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops_gitops.actor import whoami
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.base import Backend, Serving
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, err, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, GitOpsError, NotFoundError
from mlops_gitops.hashing import spec_hash
from mlops_gitops.state import ActualResource


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


def serving_of(name: str, backend: Backend) -> Serving:
    serving = backend.serving
    if serving is None:
        raise ConfigError(f"workspace '{name}' records endpoints without serving them (its {backend.name} "
                          "backend does not serve)")
    return serving


def _online(backend: Backend, endpoint: str) -> ActualResource:
    row = backend.get(Address(Kind.ONLINE_ENDPOINT, endpoint))
    if row is None:
        raise NotFoundError(f"online endpoint '{endpoint}' does not exist in the workspace")
    return row


def endpoint_show(endpoint: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (name, backend):
        row = _online(backend, endpoint)
        traffic = backend.get(Address(Kind.TRAFFIC, endpoint))
        serving = serving_of(name, backend)
        info = serving.host()
        status = serving.status() or {}
        hosts = following_hosts(serving.hosts(), endpoint, backend.serial())
    deployments = {k.split("/", 1)[1]: v for k, v in (status.get("deployments") or {}).items()
                   if k.startswith(endpoint + "/")}
    out(json.dumps({
        "name": endpoint, "workspace": name, "auth_mode": row.spec.get("auth_mode", "key"),
        "scoring_uri": f"{info.url}/endpoints/{endpoint}/score" if info else None,
        "openapi_v2_uri": f"{info.url}/v2/models/{endpoint}/infer" if info else None,
        "host": "running" if info else "stopped (mlops-gitops serve starts it)",
        "traffic": (traffic.spec.get("traffic") if traffic else {}),
        "mirror_traffic": (traffic.spec.get("mirror_traffic") if traffic else {}),
        "deployments": deployments,
        **({"hosts": hosts} if hosts or serving.by_hosts else {}),
    }, indent=2))
    return EXIT_OK


def following_hosts(reports: list[dict[str, Any]], endpoint: str, serial: int) -> list[dict[str, Any]]:
    """What each host that follows the workspace serves of this endpoint, and whether it is current."""
    shown = []
    for r in reports:
        status = r["status"]
        behind = serial - int(r["serial"])
        shown.append({
            "host": r["id"], "url": r["url"], "revision": r["serial"],
            "state": "current" if behind <= 0 else f"{behind} change(s) behind (workspace revision {serial})",
            "heartbeat": r["heartbeat"],
            "traffic": (status.get("routes") or {}).get(endpoint, {}),
            "deployments": {k.split("/", 1)[1]: v for k, v in (status.get("deployments") or {}).items()
                            if k.startswith(endpoint + "/")},
            **({"held": status["held"][endpoint]} if endpoint in (status.get("held") or {}) else {}),
        })
    return shown


def get_credentials(endpoint: str | None, path: str = ".", workspace: str | None = None,
                    metrics: bool = False) -> int:
    with workspace_backend(open_project(path), workspace) as (name, backend):
        serving = serving_of(name, backend)
        if metrics:
            out(json.dumps(serving.metrics_credentials(), indent=2))
            return EXIT_OK
        if endpoint is None:
            raise ConfigError("name an endpoint, or pass --metrics for the endpoint host's metrics key")
        batch = backend.get(Address(Kind.BATCH_ENDPOINT, endpoint))  # invoked through the host with its keys
        mode = "key" if batch is not None else _online(backend, endpoint).spec.get("auth_mode", "key")
        primary, secondary = serving.endpoint_keys(endpoint)
    if mode != "key":
        err(f"endpoint '{endpoint}' uses auth_mode {mode}, which needs Azure's identity platform; the local "
            "workspace serves it only with these keys")
    out(json.dumps({"primaryKey": primary, "secondaryKey": secondary}, indent=2))
    return EXIT_OK


def regenerate_keys(endpoint: str, which: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (name, backend):
        _online(backend, endpoint)
        serving_of(name, backend).regenerate_key(endpoint, which)
    out(f"Regenerated the {which} key of endpoint '{endpoint}' (mlops-gitops endpoint get-credentials shows it).")
    return EXIT_OK


def invoke(endpoint: str, request_file: str, deployment: str | None = None, path: str = ".",
           workspace: str | None = None) -> int:
    try:
        body = Path(request_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read request file {request_file}: {exc.strerror}") from None
    with workspace_backend(open_project(path), workspace) as (name, backend):
        _online(backend, endpoint)
        serving = serving_of(name, backend)
        was_running = serving.host() is not None
        status, served_by, data = serving.score(endpoint, body, deployment)
    if not was_running:
        err("The endpoint host was not running: this request started it, and it keeps serving "
            "(`mlops-gitops serve --stop` stops it).")
    if status >= 400:
        raise GitOpsError(f"endpoint '{endpoint}' answered {status}: {data}")
    out(data)
    if served_by:
        err(f"(served by deployment {served_by})")
    return EXIT_OK


def logs(endpoint: str, deployment: str | None = None, lines: int = 50, path: str = ".",
         workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (name, backend):
        serving = serving_of(name, backend)
        shown = serving.logs(endpoint, deployment, lines)
        status = None if shown else serving.status()
    for source, tail in shown:
        out(f"==> {source} <==")
        out("\n".join(tail))
    if not shown:
        out(_no_logs(endpoint, deployment, name, status))
    return EXIT_OK


def _no_logs(endpoint: str, deployment: str | None, workspace: str, status: dict[str, Any] | None) -> str:
    """Why there is nothing to show: a host that is not running, or deployments that have printed nothing."""
    what = f"endpoint '{endpoint}'" + (f" deployment '{deployment}'" if deployment else "")
    if status is None:
        return (f"No logs for {what} in workspace '{workspace}': the endpoint host is not running "
                "(`mlops-gitops serve` starts it).")
    serving = sorted(k.split("/", 1)[1] for k in status.get("deployments") or {}
                     if k.startswith(endpoint + "/") and (deployment is None or k == f"{endpoint}/{deployment}"))
    if serving:
        return (f"{what} is serving (deployment(s) {', '.join(serving)}); nothing has been logged yet (its "
                "scoring code has printed nothing).")
    return f"No logs for {what} in workspace '{workspace}': the host serves no such deployment."


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops endpoint list -C example-repo",
                  "mlops-gitops endpoint invoke cancer --request-file samples/request.json -C example-repo")
    a = sub.add_parser("list", help="endpoints, deployments and traffic")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint list -C example-repo",
                  "mlops-gitops endpoint list --format json -w staging -C example-repo")
    a.set_defaults(run=endpoint_list)
    a = sub.add_parser("set-traffic", help="change traffic outside Git (plan then reports it as drift)")
    a.add_argument("endpoint", help="online endpoint name")
    a.add_argument("pairs", nargs="+", metavar="DEPLOYMENT=PERCENT",
                   help="the new split, e.g. blue=90 green=10 (percentages summing to 100, or all 0)")
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint set-traffic cancer blue=50 green=50 -C example-repo",
                  "mlops-gitops endpoint set-traffic cancer blue=100 green=0 -C example-repo")
    a.set_defaults(run=set_traffic)
    a = sub.add_parser("show", help="scoring URI, traffic, deployments and their state")
    a.add_argument("endpoint", help="online endpoint name")
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint show cancer -C example-repo")
    a.set_defaults(run=endpoint_show)
    a = sub.add_parser("invoke", help="send a request file to the endpoint (or one deployment)")
    a.add_argument("endpoint", help="online endpoint name")
    a.add_argument("--request-file", required=True, metavar="FILE", help="JSON request body to score (required)")
    a.add_argument("--deployment", help="pin a deployment (the azureml-model-deployment header)")
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint invoke cancer --request-file samples/request.json -C example-repo",
                  "mlops-gitops endpoint invoke cancer --deployment green --request-file samples/request.json "
                  "-C example-repo")
    a.set_defaults(run=invoke)
    a = sub.add_parser("logs", help="the host's and the deployments' logs")
    a.add_argument("endpoint", help="online endpoint name")
    a.add_argument("--deployment", help="only this deployment's log (default: the host's and every deployment's)")
    a.add_argument("--lines", type=int, default=50, metavar="N", help="last N lines of each log (default 50)")
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint logs cancer -C example-repo",
                  "mlops-gitops endpoint logs cancer --deployment green --lines 200 -C example-repo")
    a.set_defaults(run=logs)
    a = sub.add_parser("get-credentials", help="the endpoint's two keys (or the host's metrics key)")
    a.add_argument("endpoint", nargs="?", help="online or batch endpoint name (not with --metrics)")
    a.add_argument("--metrics", action="store_true", help="the workspace's key of the endpoint host's /metrics")
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint get-credentials cancer -C example-repo",
                  "mlops-gitops endpoint get-credentials --metrics -C example-repo")
    a.set_defaults(run=get_credentials)
    a = sub.add_parser("regenerate-keys", help="replace one of the endpoint's keys")
    a.add_argument("endpoint", help="online endpoint name")
    a.add_argument("--key-type", dest="which", choices=["primary", "secondary"], default="primary",
                   help="which key to replace (default: primary)")
    args.workspace(a)
    args.examples(a, "mlops-gitops endpoint regenerate-keys cancer --key-type secondary -C example-repo")
    a.set_defaults(run=regenerate_keys)
