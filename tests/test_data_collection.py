"""Data collection (data_collector on online deployments): the host samples what a deployment receives and
answers into Parquet files under the workspace, off the request path; `data collected` lists and exports them;
a monitor reads them as its production data."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlops_gitops.backends.local.collected import Collected
from mlops_gitops.commands.data import parse_since
from mlops_gitops.runtime.serving.collector import CollectorPool, Sample, _columns, _table, rates_of
from tests.helpers import AZ, Result, init_repo, write
from tests.serving_helpers import SAMPLE, Host, served_tree

Cli = Callable[..., Result]


@pytest.mark.parametrize(("payload", "columns"), [
    ({"data": [[1, 2], [3, 4]]}, {"input_0": [1, 3], "input_1": [2, 4]}),
    ({"input_data": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}}, {"a": [1, 2], "b": ["x", "y"]}),
    ([{"a": 1}, {"a": 2, "b": 3}], {"a": [1, 2], "b": [None, 3]}),
    ({"inputs": [{"name": "X", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
     {"X_0": [1, 3], "X_1": [2, 4]}),
    ({"label": [0, 1], "score": [0.1, 0.9]}, {"label": [0, 1], "score": [0.1, 0.9]}),
    ([0, 1, 1], {"input": [0, 1, 1]}),
    ({"hello": "world"}, None),
])
def test_payloads_become_rows(payload: object, columns: object) -> None:
    assert _columns(payload, "input") == columns


def test_a_segment_of_mixed_shapes_is_the_rows_of_each_request_in_order() -> None:
    """Rows of consecutive requests are made columns at once; other shapes, text and a width change between
    them keep each request's rows in place, and a feature a request lacks is null there."""
    bodies = [{"data": [[1, 2], [3, 4]]}, {"data": [[5, 6]]}, [{"input_0": 7, "extra": "x"}], {"data": [[8, 9, 10]]},
              {"input_data": {"columns": ["input_0", "input_1"], "data": [[11, 12]]}}, "not json", {"data": [[13, 14]]}]
    samples = [Sample("model_inputs", f"c{i}", 1.0, b.encode() if isinstance(b, str) else json.dumps(b).encode())
               for i, b in enumerate(bodies)]
    table = _table({"endpoint": "e", "deployment": "d", "model_version": "1"}, "model_inputs", samples).to_pydict()
    assert table["correlationid"] == ["c0", "c0", "c1", "c2", "c3", "c4", "c5", "c6"]
    assert table["row"] == [0, 1, 0, 0, 0, 0, 0, 0]
    assert table["input_0"] == [1, 3, 5, 7, 8, 11, None, 13]
    assert table["input_1"] == [2, 4, 6, None, 9, 12, None, 14]
    assert table["input_2"] == [None, None, None, None, 10, None, None, None]
    assert table["extra"] == [None, None, None, "x", None, None, None, None]
    assert table["data"] == [None] * 6 + ["not json", None]


def test_data_collector_settings() -> None:
    rates, rolling = rates_of({"sampling_rate": 0.5, "rolling_rate": "minute",
                               "collections": {"model_inputs": {"enabled": "True"},
                                               "model_outputs": {"enabled": "False"},
                                               "request": {"sampling_rate": 1.0}}})
    assert rates == {"model_inputs": 0.5, "request": 1.0} and rolling == "minute"
    assert rates_of(None) == ({}, "hour")


def test_pool_writes_complete_parquet_files_per_window(tmp_path: Path) -> None:
    pool = CollectorPool(tmp_path / "collected", flush_s=3600, converter=False)  # close() spools and converts
    dc = pool.collector("ep/blue", "ep", "blue", "3", {"model_inputs": 1.0, "model_outputs": 1.0,
                                                       "request": 0.0}, "hour")
    for i in range(3):
        draw = dc.draw()
        assert draw is not None
        now = time.time()
        dc.add("model_inputs", draw, f"c{i}", json.dumps({"data": [[i, i * 2.5]]}).encode(), now)
        dc.add("model_outputs", draw, f"c{i}", json.dumps([i % 2]).encode(), now)
        dc.add("request", draw, f"c{i}", b"{}", now)  # sampling rate 0: never kept
    dc.add("model_inputs", 0.0, "mixed", json.dumps({"data": [["text", 1]]}).encode(), time.time())
    gone = pool.collector("ep/green", "ep", "green", "1", {"model_inputs": 1.0}, "hour")
    gone.add("model_inputs", 0.0, "last", b'{"data": [[1]]}', time.time())
    pool.retire("ep/green")  # its deployment deleted: what it sampled is kept, and it leaves the pool
    assert set(pool.collectors) == {"ep/blue"} and len(list(pool.spool.glob("*.seg"))) == 1
    pool.close()
    assert [f.path.parent.parts[-6] for f in Collected(tmp_path / "collected").files("ep", "green")] == ["green"]
    files = Collected(tmp_path / "collected").files("ep", "blue")
    assert {f.collection for f in files} == {"model_inputs", "model_outputs"}
    assert not list((tmp_path / "collected").rglob("*.tmp")), "no half-written file stays behind"
    assert not list((tmp_path / "collected").rglob("*.seg")), "the spool is converted and emptied"
    inputs = next(f for f in files if f.collection == "model_inputs")
    now = datetime.now(UTC)
    assert inputs.path.parent.relative_to(tmp_path / "collected").parts == (
        "ep", "blue", "model_inputs", f"{now:%Y}", f"{now:%m}", f"{now:%d}", f"{now:%H}")
    table = pq.read_table(inputs.path).to_pylist()
    assert [r["correlationid"] for r in table] == ["c0", "c1", "c2", "mixed"]
    assert table[0]["model_version"] == "3" and table[0]["deployment"] == "blue"
    assert [r["input_0"] for r in table] == ["0", "1", "2", "text"], "a feature of mixed types is kept as text"
    outputs = pq.read_table(next(f for f in files if f.collection == "model_outputs").path).to_pylist()
    assert [r["prediction"] for r in outputs] == [0, 1, 0]
    window, sha256 = Collected(tmp_path / "collected").window("ep", "blue", "model_inputs",
                                                         now - timedelta(hours=1), now + timedelta(hours=1))
    assert window.num_rows == 4 and window["input_1"].to_pylist() == [0.0, 2.5, 5.0, 1.0]
    assert "correlationid" not in window.column_names, "the signals read features, not the record's facts"
    assert sha256 == hashlib.sha256(inputs.path.read_bytes()).hexdigest(), "the hash of what was read"
    assert Collected(tmp_path / "collected").files("ep", since=now + timedelta(hours=2)) == []


def test_since_takes_times_and_durations() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert parse_since("6h", now) == datetime(2026, 12, 7, 6, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    from mlops_gitops.errors import ConfigError

    with pytest.raises(ConfigError, match="duration"):
        parse_since("yesterday")


COLLECTOR = ("data_collector:\n  sampling_rate: 1.0\n  collections:\n    model_inputs: {enabled: 'True'}\n"
             "    model_outputs: {enabled: 'True'}\n    my_features: {enabled: 'True'}\n")


@pytest.mark.slow
def test_host_collects_exports_and_a_monitor_reads_it(serving: Path, cli: Cli, tmp_path: Path) -> None:
    root = served_tree(serving, {"blue": 100}, settings=COLLECTOR)
    write(root / "data" / "reference.csv", ",".join(f"input_{i}" for i in range(30)) + "\n"
          + "".join(",".join(str(v) for v in row) + "\n" for row in SAMPLE["data"] * 20))
    write(root / "data" / "reference.yml", f"$schema: {AZ}/data.schema.json\nname: reference\nversion: '1'\n"
                                           "type: uri_file\npath: ./reference.csv\n")
    write(root / "schedules" / "drift.yml", (
        f"$schema: {AZ}/schedule.schema.json\nname: drift\ntrigger: {{type: cron, expression: '0 3 * * *'}}\n"
        "create_monitor:\n  monitoring_target: {endpoint_deployment_id: 'azureml:cancer:blue'}\n"
        "  monitoring_signals:\n    inputs:\n      type: data_drift\n"
        "      production_data: {data_window: {lookback_window_size: P1D}}\n"
        "      reference_data:\n        input_data: {type: uri_file, path: 'azureml:reference:1'}\n"
        "      features: [input_0, input_1]\n"))
    init_repo(root)
    applied = cli("apply", "--auto-approve", cwd=root)
    assert applied.code == 0, applied.err
    assert "my_features" in applied.err and "stay empty" in applied.err, "a custom collection is said to stay empty"
    ws = root / ".mlops" / "dev"
    host = Host(ws)
    for i in range(5):
        res = host.client.post("/endpoints/cancer/score", json=SAMPLE,
                               headers={**host.auth(), "x-request-id": f"req-{i}"})
        assert res.status_code == 200 and res.headers["x-request-id"] == f"req-{i}"
    host.wait_until(lambda s: s["deployments"]["cancer/blue"]["collected"]["spooled"] == 10)
    os.kill(host.pid, signal.SIGKILL)  # spooled is on disk: the converter outlives the host to finish it
    deadline = time.monotonic() + 30
    while True:
        listed = cli("data", "collected", "cancer/blue", "--since", "1h", "--format", "json", cwd=root)
        assert listed.code == 0, listed.err
        files = json.loads(listed.out)
        if sum(f["rows"] for f in files) == 20 or time.monotonic() > deadline:
            break
    assert {f["collection"]: f["rows"] for f in files} == {"model_inputs": 10, "model_outputs": 10}
    rows = pq.read_table(next(f["path"] for f in files if f["collection"] == "model_inputs")).to_pylist()
    assert sorted({r["correlationid"] for r in rows}) == [f"req-{i}" for i in range(5)]
    assert rows[0]["input_0"] == SAMPLE["data"][0][0] and rows[0]["endpoint"] == "cancer"
    exported = cli("data", "collected", "cancer", "--export", str(tmp_path / "out"), cwd=root)
    assert exported.code == 0 and "Exported 2 file(s) (20 rows)" in exported.out
    assert len(list((tmp_path / "out").rglob("*.parquet"))) == 2
    import duckdb  # as the README queries an export

    counted = duckdb.sql(f"SELECT deployment, count(*) FROM read_parquet('{tmp_path}/out/*/*/model_inputs/**/*.parquet'"
                         ", union_by_name=true) GROUP BY ALL").fetchall()
    assert counted == [("blue", 10)]
    ran = cli("monitor", "run", "drift", cwd=root)
    assert ran.code == 0, ran.out + ran.err
    shown = json.loads(cli("monitor", "list", "--format", "json", cwd=root).out)[0]
    record = json.loads(cli("monitor", "show", shown["id"], "--format", "json", cwd=root).out)
    facts = record["data"]["inputs"]
    assert facts["production"] == "collected:cancer/blue/model_inputs" and facts["production_rows"] == 10
    assert shown["status"] == "passed", "the same rows as the reference do not drift"
    assert cli("data", "collected", "cancer", "--since", "yesterday", cwd=root).code == 1


CUSTOM_SCRIPT = '''
import json
from azureml.ai.monitoring import Collector

features = Collector(name="my_features")
scores = Collector(name="my_scores", on_error=lambda e: print("collect failed", e))

def init():
    pass

def run(raw):
    rows = json.loads(raw)["data"]
    context = features.collect([{"width": r[0], "ratio": r[0] / (r[1] or 1)} for r in rows])
    scores.collect({"score": [0.25] * len(rows)}, context)
    return {"rows": len(rows), "correlation": context.get_id()}
'''


@pytest.mark.slow
def test_a_scoring_scripts_collector_fills_custom_collections(serving: Path, cli: Cli) -> None:
    custom = ("data_collector:\n  collections:\n    model_inputs: {enabled: 'True'}\n"
              "    my_features: {enabled: 'True'}\n    my_scores: {enabled: 'True'}\n")
    root = served_tree(serving, {"blue": 90, "green": 10}, green="script", green_settings=custom)
    write(root / "src" / "score.py", CUSTOM_SCRIPT)
    init_repo(root)
    applied = cli("apply", "--auto-approve", cwd=root)
    assert applied.code == 0, applied.err
    assert "stay empty" not in applied.err, "a scripted deployment fills its custom collections"
    host = Host(root / ".mlops" / "dev")
    answers = [host.score(SAMPLE, deployment="green").json() for _ in range(3)]
    assert [a["rows"] for a in answers] == [len(SAMPLE["data"])] * 3
    collected = Collected(root / ".mlops" / "dev" / "collected")

    def rows_of(collection: str) -> list[dict[str, object]]:
        return [r for f in collected.files("cancer", "green", collection) for r in pq.read_table(f.path).to_pylist()]

    deadline = time.monotonic() + 30  # the worker spools each second, the converter makes Parquet of it
    while len(rows_of("my_scores")) < 3 * len(SAMPLE["data"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    features, scores = rows_of("my_features"), rows_of("my_scores")
    assert len(features) == len(scores) == 3 * len(SAMPLE["data"])
    first = SAMPLE["data"][0]
    row = next(r for r in features if r["row"] == 0)
    assert row["width"] == first[0] and row["ratio"] == pytest.approx(first[0] / first[1])
    assert row["deployment"] == "green" and row["collection"] == "my_features"
    assert {r["correlationid"] for r in features} == {r["correlationid"] for r in scores} == {
        a["correlation"] for a in answers}, "collect(data, context) links a request's collections"
    assert len(rows_of("model_inputs")) == 3 * len(SAMPLE["data"]), "the host still collects the inputs"


def test_the_collector_outside_a_local_worker_does_nothing_and_never_raises(tmp_path: Path) -> None:
    import importlib
    import sys

    shims = Path(__file__).resolve().parents[1] / "mlops_gitops" / "runtime" / "serving" / "shims"
    sys.path.insert(0, str(shims))
    try:
        monitoring = importlib.import_module("azureml.ai.monitoring")
        errors: list[Exception] = []
        collector = monitoring.Collector(name="my_features", on_error=errors.append)
        context = collector.collect([{"a": 1}])
        assert context.get_id() and collector.collect([{"a": 2}], context) is context
        os.environ["MLOPS_GITOPS_COLLECTOR"] = json.dumps({"spool": str(tmp_path), "rates": {"my_features": 1.0},
                                                           "meta": {"endpoint": "e", "deployment": "d"}})
        monitoring._spool = None
        collector.collect("not a table", context)
        assert [type(e) for e in errors] == [TypeError], "a bad payload reaches on_error, not the request"
        collector.collect({"a": [1, 2]}, context)
        monitoring._spool.flush()
        from mlops_gitops.runtime.serving.collector import read_segment

        meta, samples = read_segment(next(tmp_path.glob("*.seg")))
        assert meta["deployment"] == "d" and [(s.collection, s.correlation_id, json.loads(s.body))
                                              for s in samples] == [("my_features", context.get_id(),
                                                                     {"a": [1, 2]})]
    finally:
        os.environ.pop("MLOPS_GITOPS_COLLECTOR", None)
        sys.path.remove(str(shims))
        for name in [m for m in sys.modules if m == "azureml" or m.startswith("azureml.")]:
            del sys.modules[name]
