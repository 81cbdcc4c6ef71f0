"""The drift arithmetic against scipy's and numpy's own functions, and the two ways a table is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops_gitops.runtime.monitoring.metrics import BINS, SignalError
from mlops_gitops.runtime.monitoring.signals import _psi, categorical_metrics, evaluate, numerical_metrics
from mlops_gitops.runtime.monitoring.table import Column, Table, _parse


@pytest.mark.parametrize("rows", [800, 30_000])  # scipy's exact KS below 10,000 rows, Smirnov's above
def test_numerical_metrics_equal_scipys_on_data_with_ties(rows: int) -> None:
    rng = np.random.default_rng(rows)
    ref = np.round(rng.normal(0, 1, rows), 1)  # rounded: many equal values, in both samples
    prod = np.round(rng.normal(0.15, 1.2, rows // 2), 1)
    got = numerical_metrics(ref, prod)
    assert got["normalized_wasserstein_distance"] == pytest.approx(
        stats.wasserstein_distance(ref, prod) / np.std(ref), rel=1e-9)
    assert got["two_sample_kolmogorov_smirnov_test"] == pytest.approx(stats.ks_2samp(ref, prod).pvalue, rel=1e-6)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)))
    edges[0], edges[-1] = min(edges[0], prod.min()), max(edges[-1], prod.max())
    ref_hist, prod_hist = np.histogram(ref, edges)[0], np.histogram(prod, edges)[0]
    assert got["population_stability_index"] == pytest.approx(_psi(ref_hist.astype(float), prod_hist.astype(float)))
    assert got["jensen_shannon_distance"] == pytest.approx(
        float(distance.jensenshannon(ref_hist, prod_hist, base=2)), abs=1e-6)


def test_only_the_wanted_metrics_are_computed() -> None:
    rng = np.random.default_rng(0)
    ref, prod = rng.normal(size=500), rng.normal(size=400)
    assert set(numerical_metrics(ref, prod, ("normalized_wasserstein_distance",))) == {
        "normalized_wasserstein_distance"}
    got = categorical_metrics({"a": 30, "b": 70}, {"a": 60, "b": 40, "c": 5}, ("pearsons_chi_squared_test",))
    table = np.array([[30, 70, 0], [60, 40, 5]])
    assert got == {"pearsons_chi_squared_test": pytest.approx(stats.chi2_contingency(table).pvalue)}


MESSY = [" 1.5", "2", "NaN", "", "x", "inf", "-3e2", None, " null ", "7.", ".25", "1e-3", "None", "3 4"]


@pytest.mark.parametrize("given", ["list", "arrow", "object array"])
def test_a_column_reads_numbers_nulls_and_errors_the_same_from_every_source(given: str) -> None:
    source = {"list": MESSY, "arrow": pa.chunked_array([pa.array(MESSY[:6]), pa.array(MESSY[6:])]),
              "object array": np.array(MESSY, dtype=object)}[given]
    numbers, nulls, errors = Column(source, len(MESSY)).numbers()
    expected = _parse(MESSY)  # float() on each value, one by one
    assert numbers.tolist() == expected[0].tolist() == [1.5, 2.0, float("inf"), -300.0, 7.0, 0.25, 0.001]
    assert (nulls, errors) == expected[1:] == (5, 2)
    counts, null_count = Column(source, len(MESSY)).counts()
    assert null_count == 5 and counts["x"] == 1 and counts[" 1.5"] == 1 and len(counts) == 9


def test_a_few_bad_values_leave_a_column_numerical_and_many_make_it_categorical() -> None:
    nearly = [str(i) for i in range(995)] + ["oops"] * 5
    assert Column(nearly, 1000).kind == "numerical"
    assert Column(nearly[:900] + ["oops"] * 100, 1000).kind == "categorical"
    assert Column(np.array([1.0, np.nan]), 2).kind == "numerical"


def test_csv_is_read_alike_with_and_without_pyarrow(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("size,colour\n1.5,red\nNA,blue\n2,\n")
    (tmp_path / "b.csv").write_text("size,colour\n3e1,red\nbad\n")  # a short row: its missing cell is a null
    files = [tmp_path / "a.csv", tmp_path / "b.csv"]
    with pytest.raises(pa.ArrowInvalid):  # pyarrow refuses the short row: Table.read reads such files as text
        Table._read_arrow(files, ["size", "colour"])
    assert Table.read(files, "data").columns["colour"].counts() == ({"red": 2, "blue": 1}, 2)
    (tmp_path / "b.csv").write_text("size,colour\n3e1,red\nbad,\n")
    fast, slow = Table._read_arrow(files, ["size", "colour"]), Table._read_text(files, ["size", "colour"])
    assert fast.rows == slow.rows == 5
    for name in ("size", "colour"):
        a, b = fast.columns[name], slow.columns[name]
        assert a.numbers()[0].tolist() == b.numbers()[0].tolist() and a.numbers()[1:] == b.numbers()[1:]
        assert a.counts() == b.counts()
    assert fast.columns["size"].numbers()[1:] == (1, 1) and fast.columns["colour"].counts() == ({"red": 2,
                                                                                                "blue": 1}, 2)
    result = evaluate("q", "data_quality", fast, slow, None, None)
    assert {f.feature: f.metrics["null_value_rate"] for f in result.features} == {"size": 0.2, "colour": 0.4}


def test_top_n_features_are_ranked_by_what_they_tell_about_the_target() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    strong, weak, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "blue"], n)
    target = ((strong + 0.3 * weak + 0.1 * rng.normal(size=n)) > 0).astype(float)
    reference = Table.of({"noise": noise, "weak": weak, "strong": strong, "colour": colour.astype(object),
                          "label": target})
    production = Table.of({"noise": noise, "weak": weak + 2, "strong": strong, "colour": colour.astype(object)})
    result = evaluate("d", "data_drift", reference, production, {"top_n_feature_importance": 2}, None,
                      target="label")
    assert [f.feature for f in result.features] == ["strong", "weak"]
    assert result.features[0].importance > result.features[1].importance > 0
    assert [f.feature for f in result.features if f.breached] == ["weak"]
    everything = evaluate("d", "data_drift", reference, production, None, None, target="label")
    assert [f.feature for f in everything.features] == ["noise", "weak", "strong", "colour"], "the target is no feature"
    with pytest.raises(SignalError, match="target_column_name"):
        evaluate("d", "data_drift", reference, production, {"top_n_feature_importance": 2}, None)
    with pytest.raises(SignalError, match="write a list of columns"):
        evaluate("d", "data_drift", reference, production, 5, None, target="label")


@pytest.mark.parametrize("given", ["list", "arrow"])
def test_row_values_keep_the_rows_in_order(given: str) -> None:
    values = ["1.5", "NA", "2", "x"] + ["3"] * 200
    source = values if given == "list" else pa.array(values)
    rows = Column(source, len(values)).row_values()
    assert np.isnan(rows[1]) and np.isnan(rows[3]) and rows[0] == 1.5 and rows[2] == 2.0 and len(rows) == 204
    text = Column(["a", "", "b"] if given == "list" else pa.array(["a", "", "b"]), 3).row_values()
    assert text == ["a", None, "b"]
