"""The lineage graph of a workspace: resources, runs, commits and DVC hashes, and how they connect.

Upstream of a model version: the run that produced it, that run's data (with DVC hashes), code
(component versions) and commit, the commit and pull request that applied it. Downstream: the runs
and resources that use it, the deployments serving it and their health, and the monitor runs that watched them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.errors import ConfigError, NotFoundError
from mlops_gitops.kinds import VERSIONED
from mlops_gitops.lineage.graph import Graph, Node
from mlops_gitops.spec.references import resolved_job_output
from mlops_gitops.state import ActualResource, RunRecord, Snapshot, StepRecord
from mlops_gitops.textsafe import shorten

# What the serving side reports of each deployment (endpoint/name -> attributes such as health);
# "*" applies to all of them (the host is not running).
Health = dict[str, dict[str, Any]]

_BY_KEY = {"model": Kind.MODEL, "environment": Kind.ENVIRONMENT, "component": Kind.COMPONENT, "path": Kind.DATA}


def _ref_target(key: str, ref: str, snapshot: Snapshot) -> Address | None:
    job_output = resolved_job_output(ref)
    if job_output is not None:
        return Address(Kind.JOB, job_output.job)
    name, _, version = ref.partition(":")
    kind = _BY_KEY.get(key.rsplit(".", 1)[-1])
    if kind is not None:
        return Address(kind, name, version or None)
    return next((Address(k, name, version) for k in VERSIONED if Address(k, name, version) in snapshot.resources),
                None)


def _commit(graph: Graph, facts: dict[str, Any]) -> str | None:
    sha = facts.get("git.commit")
    if not sha:
        return None
    message = str(facts.get("git.message") or "").splitlines()
    node = Node(f"commit:{sha}", "commit", f"commit {sha[:12]}" + (f" {shorten(message[0], 60)!r}" if message else ""),
                {"author": facts.get("git.author"), "pr": facts.get("git.pr"), "branch": facts.get("git.branch")})
    graph.add(node)
    return node.id


def health_of(status: dict[str, Any] | None, serving: bool) -> Health:
    """Deployment health from the serving side's status (None: the host is not running)."""
    if not serving:
        return {}
    if status is None:
        return {"*": {"health": "endpoint host not running"}}
    return {key: {"health": "ready" if d.get("ready") else "not ready", "served": d.get("served")}
            for key, d in (status.get("deployments") or {}).items()}


def _resources(graph: Graph, snapshot: Snapshot, health: Health) -> None:
    traffic = {a.name: r.spec for a, r in snapshot.resources.items() if a.kind is Kind.TRAFFIC}
    for addr, res in snapshot.resources.items():
        if addr.kind is Kind.TRAFFIC:
            continue
        attrs: dict[str, Any] = {"status": res.status if res.status != "active" else None,
                                 "applied_at": res.provenance.get("applied_at"),
                                 "applied_by": res.provenance.get("applied_by")}
        importance = res.provenance.get("importance") if addr.kind is Kind.MODEL else None
        if importance:  # what the version's predictions depend on most (x-gitops.explain)
            attrs["importance"] = ", ".join(f"{f['name']} {f['mean']:.3g}" for f in importance["features"][:3])
        if addr.kind is Kind.ONLINE_DEPLOYMENT:
            endpoint, _, name = addr.name.partition("/")
            weights = traffic.get(endpoint, {})
            attrs["traffic"] = f"{(weights.get('traffic') or {}).get(name, 0)}%"
            mirror = (weights.get("mirror_traffic") or {}).get(name)
            attrs["mirror"] = f"{mirror}%" if mirror else None
            attrs.update(health.get(addr.name) or health.get("*") or {})
        graph.add(Node(str(addr), addr.kind.value, str(addr), attrs))
        _resource_edges(graph, snapshot, addr, res)


def _resource_edges(graph: Graph, snapshot: Snapshot, addr: Address, res: ActualResource) -> None:
    for key, ref in sorted((res.derived.get("refs") or {}).items()):
        target = _ref_target(key, str(ref), snapshot)
        if target is not None:
            graph.add(Node(str(target), target.kind.value, str(target)))
            graph.link(str(target), str(addr), key)
    if addr.kind is Kind.ONLINE_DEPLOYMENT:
        endpoint = Address(Kind.ONLINE_ENDPOINT, addr.name.split("/", 1)[0])
        graph.add(Node(str(endpoint), endpoint.kind.value, str(endpoint)))
        graph.link(str(addr), str(endpoint), "serves")
    commit = _commit(graph, res.provenance)
    if commit is not None:
        graph.link(commit, str(addr), "applied from")
    for key, info in (res.provenance.get("dvc") or {}).items():
        node = Node(f"dvc:{info['md5']}", "dvc", f"dvc md5:{info['md5'][:12]} {info.get('path') or key}")
        graph.add(node)
        graph.link(node.id, str(addr), "DVC data")
    run = res.provenance.get("run.id")
    if run:
        graph.add(Node(f"run:{run}", "run", f"run {run}"))
        if addr.kind is Kind.JOB:
            graph.link(str(addr), f"run:{run}", "ran")
        else:
            graph.link(f"run:{run}", str(addr), "produced")


def _runs(graph: Graph, runs: list[tuple[RunRecord, list[StepRecord]]]) -> None:
    by_run = {run.id: steps for run, steps in runs}
    for run, _ in runs:
        node = f"run:{run.id}"
        graph.add(Node(node, "run", f"run {run.id}", {"status": run.status, "started_at": run.started_at}))
        batch = run.snapshot.get("batch")
        if isinstance(batch, dict):  # a batch endpoint's job: its deployment ran it; its outputs are its own nodes
            dep = Address(Kind.BATCH_DEPLOYMENT, f"{batch.get('endpoint')}/{batch.get('deployment')}")
            graph.add(Node(str(dep), "batch-deployment", str(dep)))
            graph.link(str(dep), node, "ran")
            for port, out in run.outputs.items():
                output = f"output:{run.id}/{port}"
                graph.add(Node(output, "output", f"{port} of {run.id}",
                               {"sha256": out.get("sha256"), "files": len(out.get("files") or [])}))
                graph.link(node, output, "produced")
        else:
            graph.add(Node(str(Address(Kind.JOB, run.pipeline)), "job", str(Address(Kind.JOB, run.pipeline))))
            graph.link(str(Address(Kind.JOB, run.pipeline)), node, "ran")
        commit = _commit(graph, run.snapshot)
        if commit is not None:
            graph.link(commit, node, "code at")
        for s in by_run.get(run.id, []):
            if s.component.startswith("component:"):
                comp = Address(Kind.COMPONENT, *s.component[len("component:"):].split(":", 1))
                graph.add(Node(str(comp), "component", str(comp)))
                graph.link(str(comp), node, f"step {s.step}")
            for port, inp in s.inputs.items():
                origin = str(inp.get("data") or "")
                if origin.startswith("data:"):
                    data = Address(Kind.DATA, *origin[len("data:"):].split(":", 1))
                    graph.add(Node(str(data), "data", str(data)))
                    graph.link(str(data), node, f"{s.step}.inputs.{port}")


def _monitor_runs(graph: Graph, monitor_runs: list[dict[str, Any]]) -> None:
    """A monitor run reads the monitored deployment (and the model it served), its reference and production data;
    its schedule ran it."""
    for run in monitor_runs:
        node = f"monitor-run:{run['id']}"
        graph.add(Node(node, "monitor-run", f"monitor run {run['id']}",
                       {"status": run.get("status"), "started_at": run.get("started_at")}))
        schedule = str(Address(Kind.SCHEDULE, str(run.get("schedule"))))
        graph.add(Node(schedule, Kind.SCHEDULE.value, schedule))
        graph.link(schedule, node, "ran")
        for signal, facts in sorted((run.get("data") or {}).items()):
            target = facts.get("target") or {}
            for key, relation in (("deployment", "monitored"), ("model", "monitored model")):
                if target.get(key):
                    graph.add(Node(target[key], target[key].split(":", 1)[0], target[key]))
                    graph.link(target[key], node, relation)
            for key in ("reference", "production"):
                source = str(facts.get(key) or "")
                if source.startswith("data:"):
                    graph.add(Node(source, "data", source))
                    graph.link(source, node, f"{signal}.{key}_data")
                elif source.startswith("collected:") and target.get("deployment"):
                    graph.link(target["deployment"], node, f"{signal}.{key}_data ({source.rsplit('/', 1)[-1]})")


def _root(text: str, snapshot: Snapshot, graph: Graph) -> str:
    if text.startswith("monitor-run:") or f"monitor-run:{text}" in graph.nodes:
        node = text if text.startswith("monitor-run:") else f"monitor-run:{text}"
        if node not in graph.nodes:
            raise NotFoundError(f"no monitor run {node[12:]} in this workspace (see `mlops-gitops monitor list`)")
        return node
    if text.startswith("run:") or f"run:{text}" in graph.nodes:
        node = text if text.startswith("run:") else f"run:{text}"
        if node not in graph.nodes:
            raise NotFoundError(f"no run {node[4:]} in this workspace (see `mlops-gitops job list`)")
        return node
    address_text, _, label = text.partition("@")  # Azure's NAME@latest
    if label and label != "latest":
        raise ConfigError(f"unknown label '@{label}' in '{text}' (only @latest)")
    try:
        addr = Address.parse(address_text)
    except ValueError as exc:
        raise ConfigError(f"{exc}; or give a run ID") from None
    if addr.kind in VERSIONED and addr.version is None:  # a name alone: its latest version, archived ones last
        latest = snapshot.latest(addr.kind, addr.name) or snapshot.latest(addr.kind, addr.name, include_archived=True)
        if latest is not None:
            addr = latest.address
    if str(addr) not in graph.nodes:
        versions = [f"{r.address.version}{' (archived)' if r.status == 'archived' else ''}"
                    for r in snapshot.versions(addr.kind, addr.name)]
        hint = f"; its versions: {', '.join(versions)}" if versions else ""
        raise NotFoundError(f"{addr} is not in this workspace{hint}")
    return str(addr)


def build_lineage(snapshot: Snapshot, runs: list[tuple[RunRecord, list[StepRecord]]], health: Health, start: str,
                  depth: int = 4, monitor_runs: list[dict[str, Any]] | None = None) -> Graph:
    """The graph around `start` (an address, a run ID or a monitor run's), `depth` steps upstream and downstream."""
    full = Graph(root="")
    _resources(full, snapshot, health)
    _runs(full, runs)
    _monitor_runs(full, monitor_runs or [])
    root = _root(start, snapshot, full)
    graph = Graph(root=root)
    graph.add(full.nodes[root])
    for direction in ("up", "down"):
        queue: deque[tuple[str, int]] = deque([(root, 0)])
        seen = {root}
        while queue:
            node, level = queue.popleft()
            if level >= depth:
                continue
            step = full.inputs_of(node) if direction == "up" else full.outputs_of(node)
            for other, relation in step:
                graph.add(full.nodes[other])
                graph.link(*((other, node) if direction == "up" else (node, other)), relation)
                if other not in seen:
                    seen.add(other)
                    queue.append((other, level + 1))
    return graph
