"""Azure ML's monitoring signals computed on tables: `data_drift` (and `prediction_drift`, the same metrics on
the model's outputs) and `data_quality`, per feature, with Azure's metric names.

Numerical features: `jensen_shannon_distance`, `normalized_wasserstein_distance`, `population_stability_index`,
`two_sample_kolmogorov_smirnov_test` (its p-value). Categorical features: `jensen_shannon_distance`,
`pearsons_chi_squared_test` (its p-value), `population_stability_index`. Data quality: `null_value_rate`,
`data_type_error_rate`, `out_of_bounds_rate` (against the reference's range or categories). A test's metric
breaches when its p-value is *below* the threshold; every other metric when its value is above it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops_gitops.runtime.monitoring.metrics import (
    BINS,
    NULLS,
    P_VALUES,
    SignalError,
    thresholds,
)


@dataclass
class Table:
    columns: dict[str, list[str]]  # column -> values as read
    rows: int

    @classmethod
    def read(cls, files: list[Path], what: str) -> Table:
        columns: dict[str, list[str]] = {}
        header: list[str] | None = None
        rows = 0
        for f in files:
            with f.open(encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                first = next(reader, None)
                if first is None:
                    continue
                if header is None:
                    header = first
                    columns = {c: [] for c in header}
                elif first != header:
                    raise SignalError(f"{what}: {f.name} has other columns than {files[0].name}")
                for row in reader:
                    for name, value in zip(header, row, strict=False):
                        columns[name].append(value)
                    rows += 1
        if header is None or rows == 0:
            raise SignalError(f"{what} has no rows (an empty window)")
        return cls(columns, rows)


def _numbers(values: list[str]) -> tuple[np.ndarray, int, int]:
    """The values that are numbers, and how many were null and how many were not numbers."""
    out, nulls, errors = [], 0, 0
    for v in values:
        if v.strip().lower() in NULLS:
            nulls += 1
            continue
        try:
            out.append(float(v))
        except ValueError:
            errors += 1
    return np.asarray(out, dtype=np.float64), nulls, errors


def feature_type(values: list[str], parsed: tuple[np.ndarray, int, int] | None = None) -> str:
    """numerical when the values are numbers (`parsed`: what _numbers made of them already), else categorical."""
    numbers, nulls, errors = parsed if parsed is not None else _numbers(values)
    return "numerical" if len(numbers) and errors <= 0.01 * max(1, len(values) - nulls) else "categorical"


def _js(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return float(np.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2)))


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    eps = 1e-4  # empty bins: PSI is undefined there, as in every implementation a floor keeps it finite
    p, q = np.maximum(p / p.sum(), eps), np.maximum(q / q.sum(), eps)
    return float(np.sum((p - q) * np.log(p / q)))


def numerical_metrics(reference: np.ndarray, production: np.ndarray) -> dict[str, float]:
    from scipy import stats

    if len(reference) == 0 or len(production) == 0:
        raise SignalError("a feature with no values (all nulls) cannot be compared")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, BINS + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    edges[0], edges[-1] = min(edges[0], production.min()), max(edges[-1], production.max())
    ref_hist = np.histogram(reference, edges)[0].astype(np.float64)
    prod_hist = np.histogram(production, edges)[0].astype(np.float64)
    spread = float(np.std(reference)) or 1.0
    return {"jensen_shannon_distance": _js(ref_hist + 1e-12, prod_hist + 1e-12),
            "normalized_wasserstein_distance": float(stats.wasserstein_distance(reference, production) / spread),
            "population_stability_index": _psi(ref_hist, prod_hist),
            "two_sample_kolmogorov_smirnov_test": float(stats.ks_2samp(reference, production).pvalue)}


def categorical_metrics(reference: list[str], production: list[str]) -> dict[str, float]:
    from scipy import stats

    ref = [v for v in reference if v.strip().lower() not in NULLS]
    prod = [v for v in production if v.strip().lower() not in NULLS]
    if not ref or not prod:
        raise SignalError("a feature with no values (all nulls) cannot be compared")
    categories = sorted(set(ref) | set(prod))
    r = np.array([ref.count(c) for c in categories], dtype=np.float64)
    p = np.array([prod.count(c) for c in categories], dtype=np.float64)
    chi = None
    if len(categories) > 1:  # two samples: a test of their independence (a 2 x categories contingency table)
        chi = stats.chi2_contingency(np.vstack([r, p]))
    return {"jensen_shannon_distance": _js(r + 1e-12, p + 1e-12),
            "pearsons_chi_squared_test": float(chi.pvalue) if chi is not None else 1.0,
            "population_stability_index": _psi(r, p)}


def quality_metrics(reference: list[str], production: list[str], kind: str,
                    ref_numbers: np.ndarray | None = None) -> dict[str, float]:
    n = max(1, len(production))
    if kind == "numerical":
        ref_numbers = _numbers(reference)[0] if ref_numbers is None else ref_numbers
        numbers, nulls, errors = _numbers(production)
        low, high = (float(ref_numbers.min()), float(ref_numbers.max())) if len(ref_numbers) else (0.0, 0.0)
        outside = int(np.sum((numbers < low) | (numbers > high))) if len(ref_numbers) else 0
        return {"null_value_rate": nulls / n, "data_type_error_rate": errors / n, "out_of_bounds_rate": outside / n}
    known = {v for v in reference if v.strip().lower() not in NULLS}
    nulls = sum(1 for v in production if v.strip().lower() in NULLS)
    outside = sum(1 for v in production if v.strip().lower() not in NULLS and v not in known)
    return {"null_value_rate": nulls / n, "data_type_error_rate": 0.0, "out_of_bounds_rate": outside / n}


@dataclass
class FeatureResult:
    feature: str
    kind: str  # numerical | categorical
    metrics: dict[str, float] = field(default_factory=dict)
    checked: dict[str, float] = field(default_factory=dict)  # metric -> threshold
    breached: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class SignalResult:
    name: str
    type: str
    features: list[FeatureResult]
    rows: tuple[int, int]  # reference, production

    @property
    def passed(self) -> bool:
        return not any(f.breached or f.error for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.name, "type": self.type, "passed": self.passed,
                "rows": {"reference": self.rows[0], "production": self.rows[1]},
                "features": [vars(f) for f in self.features]}


def evaluate(name: str, signal_type: str, reference: Table, production: Table, features: list[str] | None,
             metric_thresholds: Any) -> SignalResult:
    if signal_type not in ("data_drift", "prediction_drift", "data_quality"):
        raise SignalError(f"signal type {signal_type} does not run locally (data_drift, prediction_drift, "
                          "data_quality do)")
    limits = thresholds(signal_type, metric_thresholds)
    missing = [c for c in reference.columns if c not in production.columns]
    extra = [c for c in production.columns if c not in reference.columns]
    chosen = features or [c for c in reference.columns if c in production.columns]
    unknown = [f for f in chosen if f not in reference.columns or f not in production.columns]
    if unknown or (not features and (missing or extra)):
        raise SignalError("reference and production data have different columns: "
                          + "; ".join(p for p in (f"only in the reference: {', '.join(missing)}" if missing else "",
                                                  f"only in production: {', '.join(extra)}" if extra else "",
                                                  f"features not in both: {', '.join(unknown)}" if unknown else "")
                                      if p))
    results = []
    for feature in chosen:
        ref, prod = reference.columns[feature], production.columns[feature]
        parsed = _numbers(ref)  # the reference, read as numbers once
        kind = feature_type(ref, parsed)
        result = FeatureResult(feature, kind)
        try:
            if signal_type == "data_quality":
                result.metrics = quality_metrics(ref, prod, kind, parsed[0])
            elif kind == "numerical":
                numbers, _, errors = _numbers(prod)
                if errors > 0.01 * max(1, len(prod)):
                    raise SignalError(f"{errors} value(s) are not numbers, as the reference's are")
                result.metrics = numerical_metrics(parsed[0], numbers)
            else:
                result.metrics = categorical_metrics(ref, prod)
        except SignalError as exc:
            result.error = str(exc)
        for metric, limit in limits[kind].items():
            if metric in result.metrics:
                result.checked[metric] = limit
                value = result.metrics[metric]
                if (value < limit) if metric in P_VALUES else (value > limit):
                    result.breached.append(metric)
        results.append(result)
    return SignalResult(name, signal_type, results, (reference.rows, production.rows))
