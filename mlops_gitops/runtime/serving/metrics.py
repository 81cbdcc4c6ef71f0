"""Prometheus metrics per endpoint and deployment; children are cached so a request pays dict lookups."""

from __future__ import annotations

import bisect
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mlops_requests", "Scoring requests by endpoint, deployment and status code",
                                ["endpoint", "deployment", "code"], registry=self.registry)
        self.latency = Histogram("mlops_request_duration_seconds", "Scoring latency",
                                 ["endpoint", "deployment"], buckets=BUCKETS, registry=self.registry)
        self.inflight = Gauge("mlops_requests_in_flight", "Requests being scored", ["endpoint", "deployment"],
                              registry=self.registry)
        self.mirrored = Counter("mlops_mirrored_requests", "Requests copied to a mirror deployment",
                                ["endpoint", "deployment", "code"], registry=self.registry)
        self._counters: dict[tuple[str, str, int], object] = {}
        self._histograms: dict[tuple[str, str], object] = {}
        # plain cumulative figures per endpoint/deployment: requests, 5xx answers, summed latency (microseconds),
        # then latency bucket counts (BUCKETS, then +Inf): what the host records in the workspace for rollouts
        self.figures_raw: dict[str, list[int]] = {}

    def observe(self, endpoint: str, deployment: str, code: int, seconds: float) -> None:
        key = (endpoint, deployment, code)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.requests.labels(endpoint, deployment, str(code))
        counter.inc()  # type: ignore[attr-defined]
        hkey = (endpoint, deployment)
        hist = self._histograms.get(hkey)
        if hist is None:
            hist = self._histograms[hkey] = self.latency.labels(endpoint, deployment)
        hist.observe(seconds)  # type: ignore[attr-defined]
        raw = self.figures_raw.get(f"{endpoint}/{deployment}")
        if raw is None:
            raw = self.figures_raw[f"{endpoint}/{deployment}"] = [0] * (len(BUCKETS) + 4)
        raw[0] += 1
        if code >= 500:
            raw[1] += 1
        raw[2] += int(seconds * 1_000_000)
        raw[3 + bisect.bisect_left(BUCKETS, seconds)] += 1

    def figures(self) -> dict[str, dict[str, Any]]:
        """Cumulative figures per deployment (endpoint/name): requests, errors (5xx), summed latency, latency
        bucket counts."""
        return {key: {"requests": raw[0], "errors": raw[1], "latency_us": raw[2], "buckets": list(raw[3:])}
                for key, raw in list(self.figures_raw.items())}

    def render(self) -> bytes:
        return generate_latest(self.registry)
