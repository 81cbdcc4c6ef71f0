"""A progressive rollout (`x-gitops.rollout` on an online endpoint): apply moves the traffic to the deployment
gaining it in steps, holds each for the pause, and judges the figures the endpoint hosts recorded in the
workspace over that pause (error rate, p99 latency, the error rate of the deployments losing traffic). A breach
restores the split from before the rollout at once, fails the change with the measured values and raises
`release.rolled_back`. Every step is recorded (with `rollout` in its provenance), so an apply killed half-way
leaves a split the next plan names as an interrupted rollout, and the next apply walks on from there.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from mlops_gitops import progress
from mlops_gitops.backends.base import Backend
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.hashing import spec_hash
from mlops_gitops.plan.model import Change
from mlops_gitops.runtime.serving.metrics import BUCKETS
from mlops_gitops.spec.kinds.common import parse_condition, seconds_of


class RolloutError(WorkspaceError):
    """A step's figures breached the rollout's health conditions; the previous split was restored."""


def split_at(before: dict[str, int], gaining: str, share: int) -> dict[str, int]:
    """`gaining` at `share` percent, the rest shared by the others in their current proportions (integers)."""
    others = {d: w for d, w in before.items() if d != gaining and w > 0}
    rest, total = 100 - share, sum(others.values())
    out = {gaining: share}
    if not others or total <= 0:
        return {gaining: 100}
    given = 0
    for i, (name, weight) in enumerate(sorted(others.items())):
        part = rest - given if i == len(others) - 1 else round(rest * weight / total)
        out[name], given = part, given + part
    return out


def _delta(start: dict[str, Any], end: dict[str, Any], key: str) -> dict[str, Any]:
    a, b = start.get(key) or {}, end.get(key) or {}
    buckets_a = list(a.get("buckets") or [0] * len(b.get("buckets") or []))
    return {"buckets": [y - x for x, y in zip(buckets_a, b.get("buckets") or [], strict=False)],
            **{k: int(b.get(k) or 0) - int(a.get(k) or 0) for k in ("requests", "errors", "latency_us")}}


def _summed(parts: list[dict[str, Any]]) -> dict[str, Any]:
    width = max((len(p["buckets"]) for p in parts), default=0)
    return {"buckets": [sum(p["buckets"][i] for p in parts if i < len(p["buckets"])) for i in range(width)],
            **{k: sum(p[k] for p in parts) for k in ("requests", "errors", "latency_us")}}


def quantile_ms(buckets: list[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (None: no answers; inf above the last bound)."""
    total = sum(buckets)
    if total <= 0:
        return None
    seen = 0
    for bound, count in zip([*BUCKETS, float("inf")], buckets, strict=False):
        seen += count
        if seen >= q * total:
            return bound * 1000
    return float("inf")


def p99_ms(buckets: list[int]) -> float | None:
    return quantile_ms(buckets, 0.99)


def figures_of(raw: dict[str, Any]) -> dict[str, float | None]:
    """A pause's counts as the named figures rollout conditions use (HOST_FIGURES)."""
    requests = raw["requests"]
    out: dict[str, float | None] = {
        "requests": requests, "errors": raw["errors"],
        "error_rate": round(raw["errors"] / requests, 6) if requests else 0.0,
        "mean_latency_ms": round(raw["latency_us"] / requests / 1000, 3) if requests else None}
    for q in (50, 90, 95, 99):
        out[f"p{q}_latency_ms"] = quantile_ms(raw["buckets"], q / 100)
    return out


def _holds(value: float, op: str, bound: float) -> bool:
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound,
            "==": value == bound}[op]


def judge(health: dict[str, Any], start: dict[str, Any], end: dict[str, Any], endpoint: str, gaining: str,
          losing: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The pause's figures of the deployment gaining traffic (and of those losing it) and the breaches."""
    new = figures_of(_delta(start, end, f"{endpoint}/{gaining}"))
    old = figures_of(_summed([_delta(start, end, f"{endpoint}/{name}") for name in losing]))
    requests, errors = int(new["requests"] or 0), int(new["errors"] or 0)
    rate, old_rate, p99 = float(new["error_rate"] or 0), float(old["error_rate"] or 0), new["p99_latency_ms"]
    figures = {**new, "old_requests": old["requests"], "old_error_rate": old_rate,
               "old_p99_latency_ms": old["p99_latency_ms"]}
    breaches = []
    if requests < int(health.get("min_requests") or 0):
        breaches.append(f"{requests} request(s) answered in the pause, fewer than min_requests "
                        f"{health['min_requests']}")
    if health.get("max_error_rate") is not None and rate > float(health["max_error_rate"]):
        breaches.append(f"error rate {rate:.2%} > max_error_rate {float(health['max_error_rate']):.2%} "
                        f"({errors} of {requests})")
    if health.get("max_p99_latency_ms") is not None and p99 is not None and p99 > float(health["max_p99_latency_ms"]):
        breaches.append(f"p99 latency {p99:g} ms > max_p99_latency_ms {float(health['max_p99_latency_ms']):g}")
    over = health.get("max_error_rate_over_old")
    if over is not None and rate - old_rate > float(over):
        breaches.append(f"error rate {rate:.2%} exceeds the old deployments' {old_rate:.2%} by more than "
                        f"{float(over):.2%}")
    for text in health.get("metrics") or []:
        name, op, bound = parse_condition(str(text))
        base = name.removesuffix("_over_old")
        value, was = new.get(base), old.get(base)
        if name != base:  # the excess over the deployments losing traffic, where both answered
            value = value - was if value is not None and was is not None else None
            figures[name] = value
        if value is not None and not _holds(float(value), op, bound):
            against = f" (old deployments: {was:g})" if name != base and was is not None else ""
            breaches.append(f"{name} {value:g} fails '{text}'{against}")
    return figures, breaches


def walk(change: Change, backend: Backend, provenance: dict[str, Any], apply_id: str,
         wait: Any = None) -> dict[str, Any] | None:
    """Walk the steps below the final split; returns what was measured (None: no rollout applies). The final
    split is the caller's to write, as for any traffic change."""
    desired = change.desired
    rollout = (desired.spec.get("rollout") if desired is not None else None) or None
    serving = backend.serving
    if desired is None or not rollout or serving is None:
        return None
    actual = backend.read().resources.get(change.address)
    before = {d: int(w) for d, w in ((actual.spec.get("traffic") if actual is not None else None) or {}).items()}
    after = {d: int(w) for d, w in (desired.spec.get("traffic") or {}).items()}
    if not any(w > 0 for w in before.values()):
        return None  # the first traffic of an endpoint: nothing is in service to protect
    gaining = max(after, key=lambda d: (after[d] - before.get(d, 0), d))
    if after[gaining] <= before.get(gaining, 0):
        return None
    origin = dict((actual.provenance.get("rollout") or {}).get("from") or before) if actual is not None else before
    steps = [s for s in rollout.get("steps") or [] if before.get(gaining, 0) < s < after[gaining]]
    pause = seconds_of(rollout.get("pause", "30s"))
    health = rollout.get("health") or {}
    losing = [d for d, w in origin.items() if d != gaining and w > 0]
    endpoint = change.address.name
    sleep = wait or (lambda s: threading.Event().wait(s))
    note = getattr(backend, "note", None) or (lambda _m: None)
    measured: list[dict[str, Any]] = []
    for i, share in enumerate(steps, 1):
        split = split_at(origin, gaining, share)
        _write(backend, change, split, provenance, apply_id, {"from": origin, "step": i, "of": len(steps) + 1,
                                                              "share": share, "deployment": gaining})
        label = f"rollout {endpoint}: step {i} of {len(steps) + 1}, {gaining} at {share}%"
        with progress.task(f"{label}, holding {pause:g} s"):
            start = serving.figures()
            sleep(pause)
            figures, breaches = judge(health, start, serving.figures(), endpoint, gaining, losing)
        note(f"  {label}: {figures['requests']} request(s), error rate {figures['error_rate']:.2%}, p99 "
             f"{figures['p99_latency_ms'] if figures['p99_latency_ms'] is not None else '-'} ms"
             + (f": {'; '.join(breaches)}" if breaches else ""))
        measured.append({"share": share, **figures})
        if breaches:
            _write(backend, change, origin, provenance, apply_id, {"from": origin, "rolled_back": True})
            backend.emit("release.rolled_back", str(change.address), {
                "endpoint": endpoint, "deployment": gaining, "share": share, "restored": origin,
                "breaches": breaches, "figures": figures})
            raise RolloutError(f"rolled back: {gaining} at {share}% breached {'; '.join(breaches)}; the split "
                               f"{_text(origin)} is restored")
    return {"deployment": gaining, "steps": measured}


def _text(split: dict[str, int]) -> str:
    return ", ".join(f"{d} {w}%" for d, w in sorted(split.items()))


def _write(backend: Backend, change: Change, split: dict[str, int], provenance: dict[str, Any], apply_id: str,
           rollout: dict[str, Any]) -> None:
    assert change.desired is not None
    spec = {**change.desired.spec, "traffic": split}
    desired = replace(change.desired, spec=spec, spec_hash=spec_hash({"spec": spec}))
    backend.put(desired, "update", {**provenance, "rollout": rollout}, apply_id, journal_begin=True)
