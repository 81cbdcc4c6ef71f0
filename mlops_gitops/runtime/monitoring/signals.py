"""Azure ML's monitoring signals computed on tables: `data_drift` (and `prediction_drift`, the same metrics on
the model's outputs) and `data_quality`, per feature, with Azure's metric names.

Numerical features: `jensen_shannon_distance`, `normalized_wasserstein_distance`, `population_stability_index`,
`two_sample_kolmogorov_smirnov_test` (its p-value). Categorical features: `jensen_shannon_distance`,
`pearsons_chi_squared_test` (its p-value), `population_stability_index`. Data quality: `null_value_rate`,
`data_type_error_rate`, `out_of_bounds_rate` (against the reference's range or categories). A test's metric
breaches when its p-value is *below* the threshold; every other metric when its value is above it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_gitops.runtime.monitoring.metrics import BINS, P_VALUES, SignalError, thresholds
from mlops_gitops.runtime.monitoring.table import Column, Table

__all__ = ["FeatureResult", "SignalResult", "Table", "categorical_metrics", "evaluate", "numerical_metrics",
           "quality_metrics"]

EXACT_KS_ROWS = 10_000  # scipy's own limit: up to it ks_2samp computes the exact p-value, above it Smirnov's


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


def _cdf_gaps(ref: np.ndarray, prod: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At every distinct value of both (sorted) samples, the two empirical CDFs' difference, and the step to the
    next value: one stable merge of the two sorted runs, then running counts of where each value came from."""
    both = np.concatenate([ref, prod])
    order = np.argsort(both, kind="stable")  # two sorted runs: a linear merge
    values = both[order]
    from_ref = order < len(ref)
    gaps = np.cumsum(from_ref) / len(ref) - np.cumsum(~from_ref) / len(prod)
    last = np.empty(len(values), dtype=bool)  # the last of equal values: where both CDFs have taken them all
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    last[-1] = True
    return gaps[last], np.diff(values[last])


def numerical_metrics(reference: np.ndarray, production: np.ndarray,
                      wanted: tuple[str, ...] | None = None) -> dict[str, float]:
    """The numerical drift metrics (`wanted`, else all) of two samples; each sample is sorted once and the
    metrics share it (scipy's functions would sort them again, each)."""
    from scipy import stats

    if len(reference) == 0 or len(production) == 0:
        raise SignalError("a feature with no values (all nulls) cannot be compared")
    names = wanted or ("jensen_shannon_distance", "normalized_wasserstein_distance", "population_stability_index",
                       "two_sample_kolmogorov_smirnov_test")
    ref, prod = np.sort(reference), np.sort(production)
    out: dict[str, float] = {}
    if "jensen_shannon_distance" in names or "population_stability_index" in names:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        edges[0], edges[-1] = min(edges[0], prod[0]), max(edges[-1], prod[-1])

        def histogram(values: np.ndarray) -> np.ndarray:  # np.histogram's bins (the last one closed) on sorted data
            at = np.searchsorted(values, edges, side="left")
            at[-1] = len(values)
            return np.diff(at).astype(np.float64)

        ref_hist, prod_hist = histogram(ref), histogram(prod)
        if "jensen_shannon_distance" in names:
            out["jensen_shannon_distance"] = _js(ref_hist + 1e-12, prod_hist + 1e-12)
        if "population_stability_index" in names:
            out["population_stability_index"] = _psi(ref_hist, prod_hist)
    if "normalized_wasserstein_distance" in names or "two_sample_kolmogorov_smirnov_test" in names:
        gaps, steps = _cdf_gaps(ref, prod)
        if "normalized_wasserstein_distance" in names:
            spread = float(np.std(ref)) or 1.0
            out["normalized_wasserstein_distance"] = float(np.sum(np.abs(gaps[:-1]) * steps)) / spread
        if "two_sample_kolmogorov_smirnov_test" in names:
            if max(len(ref), len(prod)) <= EXACT_KS_ROWS:
                out["two_sample_kolmogorov_smirnov_test"] = float(stats.ks_2samp(ref, prod).pvalue)
            else:  # scipy's asymptotic two-sided p-value, from the statistic computed above
                m, n = sorted((float(len(ref)), float(len(prod))), reverse=True)
                d = float(np.max(np.abs(gaps)))
                out["two_sample_kolmogorov_smirnov_test"] = float(
                    np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return out


def categorical_metrics(ref_counts: dict[str, int], prod_counts: dict[str, int],
                        wanted: tuple[str, ...] | None = None) -> dict[str, float]:
    """The categorical drift metrics (`wanted`, else all) of two samples, given as counts per category."""
    from scipy import stats

    if not ref_counts or not prod_counts:
        raise SignalError("a feature with no values (all nulls) cannot be compared")
    names = wanted or ("jensen_shannon_distance", "pearsons_chi_squared_test", "population_stability_index")
    categories = sorted(ref_counts.keys() | prod_counts.keys())
    r = np.array([ref_counts.get(c, 0) for c in categories], dtype=np.float64)
    p = np.array([prod_counts.get(c, 0) for c in categories], dtype=np.float64)
    out: dict[str, float] = {}
    if "jensen_shannon_distance" in names:
        out["jensen_shannon_distance"] = _js(r + 1e-12, p + 1e-12)
    if "pearsons_chi_squared_test" in names:
        # two samples: a test of their independence (a 2 x categories contingency table)
        out["pearsons_chi_squared_test"] = (float(stats.chi2_contingency(np.vstack([r, p])).pvalue)
                                            if len(categories) > 1 else 1.0)
    if "population_stability_index" in names:
        out["population_stability_index"] = _psi(r, p)
    return out


def quality_metrics(reference: Column, production: Column, kind: str) -> dict[str, float]:
    n = max(1, production.rows)
    if kind == "numerical":
        ref_numbers = reference.numbers()[0]
        numbers, nulls, errors = production.numbers()
        outside = int(np.count_nonzero((numbers < ref_numbers.min()) | (numbers > ref_numbers.max()))) \
            if len(ref_numbers) else 0
        return {"null_value_rate": nulls / n, "data_type_error_rate": errors / n, "out_of_bounds_rate": outside / n}
    known = reference.counts()[0]
    values, nulls = production.counts()
    outside = sum(count for value, count in values.items() if value not in known)
    return {"null_value_rate": nulls / n, "data_type_error_rate": 0.0, "out_of_bounds_rate": outside / n}


PLOT_BINS = 20
PLOT_CATEGORIES = 12


def distribution(reference: Column, production: Column, kind: str) -> dict[str, Any]:
    """Both samples' shares per bin of equal width over their joint range (numerical), or per category, the
    reference's most frequent first (categorical): what a report draws; empty for an all-null feature."""
    if kind == "numerical":
        ref, prod = reference.numbers()[0], production.numbers()[0]
        ref, prod = ref[np.isfinite(ref)], prod[np.isfinite(prod)]
        if not len(ref) or not len(prod):
            return {}
        low, high = float(min(ref.min(), prod.min())), float(max(ref.max(), prod.max()))
        edges = np.linspace(low, high if high > low else low + 1.0, PLOT_BINS + 1)
        return {"edges": [round(float(e), 6) for e in edges],
                "reference": [round(float(v), 6) for v in np.histogram(ref, edges)[0] / len(ref)],
                "production": [round(float(v), 6) for v in np.histogram(prod, edges)[0] / len(prod)]}
    ref_counts, prod_counts = reference.counts()[0], production.counts()[0]
    ref_total, prod_total = sum(ref_counts.values()), sum(prod_counts.values())
    if not ref_total or not prod_total:
        return {}
    ranked = sorted(ref_counts.keys() | prod_counts.keys(),
                    key=lambda c: (-ref_counts.get(c, 0), -prod_counts.get(c, 0), c))
    shown, rest = ranked[:PLOT_CATEGORIES], ranked[PLOT_CATEGORIES:]
    labels = shown + (["(other)"] if rest else [])

    def shares(counts: dict[str, int], total: int) -> list[float]:
        out = [counts.get(c, 0) / total for c in shown]
        return [round(v, 6) for v in out + ([sum(counts.get(c, 0) for c in rest) / total] if rest else [])]

    return {"labels": labels, "reference": shares(ref_counts, ref_total),
            "production": shares(prod_counts, prod_total)}


@dataclass
class FeatureResult:
    feature: str
    kind: str  # numerical | categorical
    metrics: dict[str, float] = field(default_factory=dict)
    checked: dict[str, float] = field(default_factory=dict)  # metric -> threshold
    breached: list[str] = field(default_factory=list)
    error: str = ""
    # what the report plots: shares of the rows per bin (numerical: `edges`) or per category (`labels`)
    distribution: dict[str, Any] = field(default_factory=dict)
    importance: float | None = None  # its mutual information with the target, when features were ranked by it


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


def mutual_information(feature: Column, target: Column) -> float:
    """How much knowing the feature tells about the target (nats), over the reference's rows where both have a
    value; numerical columns with more than BINS values in quantile bins. Model-free, so it ranks features
    without the model (Azure ranks them by a surrogate model's attributions)."""
    x, y = _codes(feature), _codes(target)
    keep = ~(np.isnan(x) | np.isnan(y))
    if not keep.any():
        return 0.0
    joint: Counter[tuple[float, float]] = Counter(zip(x[keep].tolist(), y[keep].tolist(), strict=True))
    n = sum(joint.values())
    px: Counter[float] = Counter()
    py: Counter[float] = Counter()
    for (a, b), c in joint.items():
        px[a] += c
        py[b] += c
    return max(0.0, float(sum(c / n * np.log(c * n / (px[a] * py[b])) for (a, b), c in joint.items())))


def _codes(column: Column) -> np.ndarray:
    """Each row's value as a discrete code (NaN where null): bins of numbers, indexes of categories."""
    if column.kind == "numerical":
        numbers = np.asarray(column.row_values(), dtype=np.float64)
        present = numbers[~np.isnan(numbers)]
        if len(np.unique(present)) > BINS:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1))[1:-1])
            numbers = np.where(np.isnan(numbers), np.nan, np.searchsorted(edges, numbers, side="right"))
        return numbers
    index: dict[str, int] = {}
    return np.array([np.nan if v is None else index.setdefault(v, len(index)) for v in column.row_values()],
                    dtype=np.float64)


def select_features(features: Any, reference: Table, production: Table,
                    target: str | None) -> tuple[list[str], dict[str, float]]:
    """The features a signal compares (Azure's `features`: a list, `all_features`, or
    `{top_n_feature_importance: N}`), and their importances where they were ranked by them."""
    candidates = [c for c in reference.columns if c in production.columns and c != target]
    if isinstance(features, list):
        return [str(f) for f in features], {}
    if isinstance(features, dict) and "top_n_feature_importance" in features:
        top = int(features["top_n_feature_importance"])
        if not target:
            raise SignalError("features.top_n_feature_importance ranks features by how much they tell about the "
                              "target: set reference_data.target_column_name")
        if target not in reference.columns:
            raise SignalError(f"reference_data.target_column_name {target!r} is not a column of the reference")
        scores = {c: mutual_information(reference.columns[c], reference.columns[target]) for c in candidates}
        ranked = sorted(candidates, key=lambda c: (-scores[c], c))[:max(0, top)]
        return ranked, {c: round(scores[c], 6) for c in ranked}
    if features not in (None, "all_features") and not isinstance(features, dict):
        raise SignalError(f"features: {features!r}: write a list of columns, all_features, or "
                          "{top_n_feature_importance: N}")
    return candidates, {}


def evaluate(name: str, signal_type: str, reference: Table, production: Table, features: Any,
             metric_thresholds: Any, shared_columns: bool = False, target: str | None = None) -> SignalResult:
    """The signal per feature (`features` as select_features reads them; the reference's `target` column is
    never one). Comparing every column, columns only one side has are an error, unless `shared_columns` (a
    reference found through lineage: training data has its label column)."""
    if signal_type not in ("data_drift", "prediction_drift", "data_quality"):
        raise SignalError(f"signal type {signal_type} does not run locally (data_drift, prediction_drift, "
                          "data_quality do)")
    limits = thresholds(signal_type, metric_thresholds)
    missing = [c for c in reference.columns if c not in production.columns and c != target]
    extra = [c for c in production.columns if c not in reference.columns and c != target]
    chosen, importance = select_features(features, reference, production, target)
    unknown = [f for f in chosen if f not in reference.columns or f not in production.columns]
    every = not isinstance(features, list) and not importance
    if unknown or (every and not shared_columns and (missing or extra)):
        raise SignalError("reference and production data have different columns: "
                          + "; ".join(p for p in (f"only in the reference: {', '.join(missing)}" if missing else "",
                                                  f"only in production: {', '.join(extra)}" if extra else "",
                                                  f"features not in both: {', '.join(unknown)}" if unknown else "")
                                      if p))
    results = []
    for feature in chosen:
        ref, prod = reference.columns[feature], production.columns[feature]
        kind = ref.kind
        wanted = tuple(limits[kind])
        result = FeatureResult(feature, kind, importance=importance.get(feature))
        try:
            if signal_type == "data_quality":
                result.metrics = quality_metrics(ref, prod, kind)
            elif kind == "numerical":
                numbers, _, errors = prod.numbers()
                if errors > 0.01 * max(1, prod.rows):
                    raise SignalError(f"{errors} value(s) are not numbers, as the reference's are")
                result.metrics = numerical_metrics(ref.numbers()[0], numbers, wanted)
            else:
                result.metrics = categorical_metrics(ref.counts()[0], prod.counts()[0], wanted)
        except SignalError as exc:
            result.error = str(exc)
        result.distribution = distribution(ref, prod, kind)
        for metric, limit in limits[kind].items():
            if metric in result.metrics:
                result.checked[metric] = limit
                value = result.metrics[metric]
                if (value < limit) if metric in P_VALUES else (value > limit):
                    result.breached.append(metric)
        results.append(result)
    return SignalResult(name, signal_type, results, (reference.rows, production.rows))
