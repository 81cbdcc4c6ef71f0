"""`mlops-gitops rollout status ENDPOINT`: where an endpoint's traffic stands, how its last progressive
rollout went (steps and what was measured, rolled back, or stopped half-way by an interrupted apply), and what
the hosts measured per deployment so far."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import NotFoundError
from mlops_gitops.textsafe import escape


def state_of(rollout: dict[str, Any] | None, traffic: dict[str, Any]) -> str:
    if not rollout:
        return "no rollout recorded"
    if rollout.get("rolled_back"):
        return f"rolled back to {_split(rollout.get('from') or {})}"
    if rollout.get("done"):
        name = str(rollout.get("deployment"))
        return f"completed: {name} at {traffic.get(name, 0)}%"
    return (f"stopped at step {rollout.get('step')} of {rollout.get('of')} ({rollout.get('deployment')} at "
            f"{rollout.get('share')}%) by an interrupted apply; the next apply goes on from there")


def _split(split: dict[str, Any]) -> str:
    return ", ".join(f"{d} {w}%" for d, w in sorted(split.items())) or "none"


def rollout_status(endpoint: str, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        traffic = backend.read().resources.get(Address(Kind.TRAFFIC, endpoint))
        if traffic is None:
            raise NotFoundError(f"online endpoint '{endpoint}' has no traffic in the workspace "
                                "(`mlops-gitops endpoint list`)")
        serving = backend.serving
        figures = {k.split("/", 1)[1]: v for k, v in (serving.figures() if serving is not None else {}).items()
                   if k.startswith(endpoint + "/")}
    split = dict(traffic.spec.get("traffic") or {})
    rollout = traffic.provenance.get("rollout")
    if fmt == "json":
        out(json.dumps({"endpoint": endpoint, "traffic": split, "rollout": rollout, "state": state_of(rollout, split),
                        "figures": figures, "updated_at": traffic.updated_at}, indent=2))
        return EXIT_OK
    out(escape(f"Endpoint {endpoint}: traffic {_split(split)} (since {traffic.updated_at[:19]})"))
    out(escape(f"  rollout: {state_of(rollout, split)}"))
    for step in (rollout or {}).get("steps") or []:
        out(escape(f"    {step['share']:>3}%: {step['requests']} request(s), error rate {step['error_rate']:.2%}, "
                   f"p99 {step['p99_latency_ms']} ms"))
    for name, f in sorted(figures.items()):
        out(escape(f"  {name}: {f['requests']} request(s), {f['errors']} error(s) recorded by "
                   f"{f.get('hosts', 1)} host(s), last at {str(f.get('at', ''))[:19]}"))
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops rollout status cancer -C example-repo")
    a = sub.add_parser("status", help="an endpoint's traffic and its last progressive rollout")
    a.add_argument("endpoint", metavar="ENDPOINT", help="an online endpoint of the workspace")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops rollout status cancer --format json -C example-repo")
    a.set_defaults(run=rollout_status)
