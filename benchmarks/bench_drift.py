"""Data drift of ROWS rows x 25 features (20 numerical, 5 categorical) against a reference of the same size: our
`data_drift` signal against Evidently's DataDriftPreset on the same in-memory data, in one process.

Both check the same metrics at the same limits: Evidently's defaults above 1,000 rows (normalised Wasserstein
distance 0.1 on numerical features, Jensen-Shannon distance 0.1 on categorical ones). Evidently's Jensen-Shannon
is in natural-log units and ours in bits (Azure's), so its 0.1 is our 0.1 / sqrt(ln 2). Loading is excluded on both
sides; each side's best of RUNS runs counts. The verdicts per feature must agree.

Evidently is not a dependency of the project: run this in an environment that has it, with the repository on
the path, for example

    uv venv /tmp/evid && VIRTUAL_ENV=/tmp/evid uv pip install evidently 'pandas<2.3' pyarrow
    /tmp/evid/bin/python benchmarks/bench_drift.py 100000

Without Evidently it times our side only.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_gitops.runtime.monitoring.signals import evaluate
from mlops_gitops.runtime.monitoring.table import Table

NUMERICAL, CATEGORICAL = 20, 5
LIMIT = 0.1


def data(rows: int, seed: int = 7) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], set[str]]:
    """Reference and production columns; production moves 6 numerical and 2 categorical features clearly."""
    rng = np.random.default_rng(seed)
    reference: dict[str, np.ndarray] = {}
    production: dict[str, np.ndarray] = {}
    moved: set[str] = set()
    for i in range(NUMERICAL):
        name, loc, scale = f"num_{i:02d}", rng.uniform(-5, 5), rng.uniform(0.5, 3)
        reference[name] = rng.normal(loc, scale, rows)
        if i < 3:  # a shifted mean
            production[name], _ = rng.normal(loc + 0.5 * scale, scale, rows), moved.add(name)
        elif i < 6:  # a wider spread
            production[name], _ = rng.normal(loc, 1.8 * scale, rows), moved.add(name)
        else:
            production[name] = rng.normal(loc, scale, rows)
    for i in range(CATEGORICAL):
        name = f"cat_{i}"
        categories = np.array([f"c{i}_{k}" for k in range(6 + i)], dtype=object)
        weights = rng.dirichlet(np.ones(len(categories)) * 2)
        reference[name] = rng.choice(categories, rows, p=weights)
        if i < 2:  # production favours other categories
            production[name], _ = rng.choice(categories, rows, p=weights[::-1]), moved.add(name)
        else:
            production[name] = rng.choice(categories, rows, p=weights)
    return reference, production, moved


def ours(reference: dict[str, np.ndarray], production: dict[str, np.ndarray]) -> tuple[float, dict[str, bool]]:
    thresholds = {"numerical": {"normalized_wasserstein_distance": LIMIT},
                  "categorical": {"jensen_shannon_distance": LIMIT / math.sqrt(math.log(2))}}
    ref, prod = Table.of(reference), Table.of(production)  # wrapping the arrays: no copy, no conversion
    started = time.perf_counter()
    result = evaluate("drift", "data_drift", ref, prod, None, thresholds)
    seconds = time.perf_counter() - started
    return seconds, {f.feature: bool(f.breached) for f in result.features}


def theirs(reference: dict[str, np.ndarray], production: dict[str, np.ndarray]) -> tuple[float, dict[str, bool]]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in reference if c.startswith("num_")]
    categorical = [c for c in reference if c.startswith("cat_")]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    ref = Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition)
    cur = Dataset.from_pandas(pd.DataFrame(production), data_definition=definition)
    report = Report([DataDriftPreset(num_method="wasserstein", cat_method="jensenshannon", threshold=LIMIT)])
    started = time.perf_counter()
    snapshot = report.run(cur, ref)
    seconds = time.perf_counter() - started
    verdicts: dict[str, bool] = {}
    for metric in snapshot.dict()["metrics"]:
        config: dict[str, Any] = metric.get("config") or {}
        column = config.get("column")
        if column in reference and isinstance(metric.get("value"), int | float):
            verdicts[column] = float(metric["value"]) >= LIMIT  # Evidently: drift when the distance reaches it
    return seconds, verdicts


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    reference, production, moved = data(rows)
    print(f"{rows} rows x {NUMERICAL} numerical + {CATEGORICAL} categorical features, reference of the same size; "
          f"{len(moved)} features moved")
    our_times, our_verdicts = [], {}
    for _ in range(runs):
        seconds, our_verdicts = ours(reference, production)
        our_times.append(seconds)
    flagged = {f for f, v in our_verdicts.items() if v}
    print(f"ours:      {min(our_times):.3f} s (best of {runs}); drift in {len(flagged)} features"
          f"{'' if flagged == moved else ' — NOT the moved ones: ' + ', '.join(sorted(flagged ^ moved))}")
    try:
        import evidently  # noqa: F401
    except ImportError:
        print("evidently is not installed here: install it (see this file's docstring) for the comparison")
        return
    ev_times, ev_verdicts = [], {}
    for _ in range(runs):
        seconds, ev_verdicts = theirs(reference, production)
        ev_times.append(seconds)
    differ = sorted(f for f in our_verdicts if our_verdicts[f] != ev_verdicts.get(f))
    print(f"evidently: {min(ev_times):.3f} s (best of {runs}); drift in {sum(ev_verdicts.values())} of "
          f"{len(ev_verdicts)} features")
    agreement = f"the same for all {len(our_verdicts)}" if not differ else "DIFFER on " + ", ".join(differ)
    print(f"verdicts per feature: {agreement}")
    print(f"ours is {min(ev_times) / min(our_times):.1f}x faster than Evidently's DataDriftPreset (goal: 10x)")


if __name__ == "__main__":
    main()
