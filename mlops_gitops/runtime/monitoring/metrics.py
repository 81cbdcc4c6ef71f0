"""Azure ML's monitoring metric names, their defaults and a signal's metric_thresholds: what validate checks
without loading numpy, and what the signals compute."""

from __future__ import annotations

from typing import Any

NUMERICAL = ("jensen_shannon_distance", "normalized_wasserstein_distance", "population_stability_index",
             "two_sample_kolmogorov_smirnov_test")
CATEGORICAL = ("jensen_shannon_distance", "pearsons_chi_squared_test", "population_stability_index")
QUALITY = ("null_value_rate", "data_type_error_rate", "out_of_bounds_rate")
P_VALUES = ("two_sample_kolmogorov_smirnov_test", "pearsons_chi_squared_test")
# what a signal checks when its metric_thresholds name nothing for a feature type
DEFAULTS = {"data_drift": {"numerical": ("jensen_shannon_distance", 0.1),
                           "categorical": ("jensen_shannon_distance", 0.1)},
            "data_quality": {"numerical": ("null_value_rate", 0.0), "categorical": ("null_value_rate", 0.0)}}
NULLS = ("", "na", "nan", "null", "none")
BINS = 20


class SignalError(ValueError):
    pass


def _items(given: Any) -> list[dict[str, Any]]:
    """metric_thresholds in either of Azure's spellings: the CLI's `{numerical: {metric: threshold}, categorical:
    {…}}`, or the SDK's list of `{applicable_feature_type, metric_name, threshold}`."""
    if isinstance(given, dict):
        out = []
        for kind, metrics in given.items():
            if kind not in ("numerical", "categorical") or not isinstance(metrics, dict):
                raise SignalError(f"metric_thresholds.{kind}: write numerical: or categorical: with "
                                  "{metric_name: threshold}")
            out += [{"applicable_feature_type": kind, "metric_name": m, "threshold": t} for m, t in metrics.items()]
        return out
    if given is not None and not isinstance(given, list):
        raise SignalError("metric_thresholds: write numerical:/categorical: maps or a list of metric_name/threshold")
    return [i if isinstance(i, dict) else {"metric_name": i} for i in given or []]


def thresholds(signal_type: str, given: Any) -> dict[str, dict[str, float]]:
    """metric_thresholds as {feature type: {metric: threshold}}; an unknown metric name is an error."""
    out: dict[str, dict[str, float]] = {"numerical": {}, "categorical": {}}
    allowed = {"numerical": NUMERICAL, "categorical": CATEGORICAL} if signal_type != "data_quality" else \
        {"numerical": QUALITY, "categorical": QUALITY}
    for item in _items(given):
        name = str(item.get("metric_name"))
        kinds = [item["applicable_feature_type"]] if item.get("applicable_feature_type") else ["numerical",
                                                                                                "categorical"]
        known = [k for k in kinds if name in allowed[k]]
        if not known:
            raise SignalError(f"unknown metric {name!r} for a {signal_type} signal on {'/'.join(kinds)} features "
                              f"(known: {', '.join(sorted(set(allowed['numerical']) | set(allowed['categorical'])))})")
        for k in known:
            out[k][name] = float(item["threshold"]) if item.get("threshold") is not None else \
                (0.05 if name in P_VALUES else 0.1)
    for k in ("numerical", "categorical"):
        if not out[k]:
            metric, value = DEFAULTS["data_quality" if signal_type == "data_quality" else "data_drift"][k]
            out[k][metric] = value
    return out
