"""Converge this machine's endpoint host to the online endpoints, deployments and traffic of the workspace.

The order is the one an apply follows, so the zero-failed-request guarantee holds with the apply on another
machine: new endpoints first (no traffic yet), then new or changed deployments (each loaded and ready before
anything routes to it), then traffic, then what the workspace no longer has. A deployment that does not
become ready keeps its endpoint's traffic as it was, and is reported (and retried after a while, or as soon
as its spec changes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.backends.base import Backend, ServingTarget
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.state import ActualResource

RETRY_FAILED_S = 60.0  # a deployment that failed to load is tried again after this (its spec unchanged)


@dataclass
class Outcome:
    """One pass: the state serial it converged to, what it changed, and what it could not do."""

    serial: int
    changes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # endpoint/deployment -> why it is not served
    held: dict[str, str] = field(default_factory=dict)  # endpoint -> why its traffic stays as it was

    def status(self, served: dict[str, str], routes: dict[str, dict[str, int]]) -> dict[str, Any]:
        """What the host reports (mg_hosts.status): deployments with their state, routes, held traffic."""
        deployments: dict[str, Any] = {k: {"state": "ready", "spec_hash": h} for k, h in served.items()}
        for key, why in self.failed.items():
            deployments[key] = {**deployments.get(key, {}), "state": "failed", "error": why}
        return {"deployments": deployments, "routes": routes, "held": self.held}


def _routed(traffic_spec: dict[str, Any]) -> dict[str, int]:
    weights = {**(traffic_spec.get("mirror_traffic") or {}), **(traffic_spec.get("traffic") or {})}
    return {str(d): int(w) for d, w in weights.items() if w}


class ServingReconciler:
    def __init__(self, backend: Backend, target: ServingTarget, log: Callable[[str], None] = lambda _: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.target = target
        self.log = log
        self.clock = clock
        self._failures: dict[str, tuple[str, str, float]] = {}  # key -> (spec hash, error, when)

    def pending_retry(self) -> bool:
        """Whether a failed deployment is due another try."""
        return any(self.clock() - at >= RETRY_FAILED_S for _, _, at in self._failures.values())

    def reconcile(self) -> Outcome:
        snap = self.backend.read()
        outcome = Outcome(snap.serial)
        live = [r for r in snap.resources.values() if r.status != "archived"]
        endpoints = {r.address.name: r for r in live if r.address.kind is Kind.ONLINE_ENDPOINT}
        deployments = {r.address.name: r for r in live if r.address.kind is Kind.ONLINE_DEPLOYMENT
                       and r.address.name.partition("/")[0] in endpoints}
        traffic = {r.address.name: r.spec for r in live if r.address.kind is Kind.TRAFFIC}
        served = self.target.served()

        for name, endpoint in sorted(endpoints.items()):  # new endpoints, with no traffic yet
            if name not in served.routes:
                self.target.route(endpoint, {})
                outcome.changes.append(f"endpoint {name} created")
        for key, deployment in sorted(deployments.items()):
            if served.deployments.get(key) != deployment.spec_hash:
                self._load(key, deployment, outcome)
        self._failures = {k: v for k, v in self._failures.items() if k in deployments}

        loaded = self.target.served().deployments
        for name, endpoint in sorted(endpoints.items()):
            want = traffic.get(name, {})
            missing = sorted(d for d in _routed(want)
                             if loaded.get(f"{name}/{d}") != getattr(deployments.get(f"{name}/{d}"), "spec_hash", 0))
            if missing:
                outcome.held[name] = f"traffic stays as it was: {', '.join(missing)} not ready"
                continue
            if self.target.route(endpoint, want):
                outcome.changes.append(f"traffic {name}: {_routed(want) or 'none'}")

        routes = self.target.served().routes
        still_routed = {f"{name}/{d}" for name, weights in routes.items() for d in weights}
        for key in sorted(set(loaded) - set(deployments)):
            if key not in still_routed:  # a held route may still send to it
                endpoint_name, _, name = key.partition("/")
                self.target.unload(endpoint_name, name)
                outcome.changes.append(f"deployment {key} removed")
        for name in sorted(set(routes) - set(endpoints)):
            self.target.drop(name)
            outcome.changes.append(f"endpoint {name} removed")
        return outcome

    def _load(self, key: str, deployment: ActualResource, outcome: Outcome) -> None:
        failed = self._failures.get(key)
        if failed and failed[0] == deployment.spec_hash and self.clock() - failed[2] < RETRY_FAILED_S:
            outcome.failed[key] = failed[1]
            return
        try:
            self.target.load(deployment)
        except WorkspaceError as exc:
            self._failures[key] = (deployment.spec_hash, str(exc), self.clock())
            outcome.failed[key] = str(exc)
            self.log(f"deployment {key} did not become ready: {exc}")
            return
        self._failures.pop(key, None)
        outcome.changes.append(f"deployment {key} loaded")
