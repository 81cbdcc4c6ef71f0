"""`analytics export DIR`: jobs, job metrics, batch predictions, monitor results and collected data as Parquet
files with documented columns, one consistent snapshot that replaces the last, read here as analysts do
(DuckDB)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from mlops_gitops.runtime.serving.collector import CollectorPool
from tests.helpers import AZ, Result, commit_all, write
from tests.test_batch import batch_tree, samples
from tests.test_monitors import table

Cli = Callable[..., Result]


def test_export_is_a_snapshot_duckdb_reads(cli: Cli, tmp_path: Path) -> None:
    repo = batch_tree(tmp_path / "repo")
    table(repo / "data" / "reference.csv")
    table(repo / "data" / "moved.csv", shift=3.0, seed=2)
    for name in ("reference", "moved"):
        write(repo / "data" / f"{name}.yml", f"$schema: {AZ}/data.schema.json\nname: {name}\nversion: '1'\n"
                                             f"type: uri_file\npath: ./{name}.csv\n")
    write(repo / "schedules" / "drift.yml", (
        f"$schema: {AZ}/schedule.schema.json\nname: drift\ntrigger: {{type: cron, expression: '0 3 * * *'}}\n"
        "create_monitor:\n  monitoring_signals:\n    features:\n      type: data_drift\n"
        "      production_data:\n        input_data: {type: uri_file, path: 'azureml:moved:1'}\n"
        "      reference_data:\n        input_data: {type: uri_file, path: 'azureml:reference:1'}\n"
        "      metric_thresholds:\n        numerical: {normalized_wasserstein_distance: 0.2}\n"))
    commit_all(repo, "Watch the data")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    scored = cli("batch", "invoke", "scores", "--input", str(samples(tmp_path / "in", count=2, rows=3)), cwd=repo)
    assert scored.code == 0, scored.err
    assert cli("monitor", "run", "drift", cwd=repo).code == 0
    pool = CollectorPool(repo / ".mlops" / "dev" / "collected", flush_s=3600, converter=False)
    dc = pool.collector("scores/blue", "scores", "blue", "1", {"model_inputs": 1.0}, "hour")
    for i in range(4):
        dc.add("model_inputs", 0.0, f"c{i}", json.dumps({"data": [[i, i / 2]]}).encode(), time.time())
    pool.close()

    target = tmp_path / "analytics"
    res = cli("analytics", "export", str(target), cwd=repo)
    assert res.code == 0, res.err
    assert "jobs 1, job_metrics " in res.out and "predictions 6, " in res.out and "1 collected file(s)" in res.out
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["tables"]["monitor_runs"] == 1 and manifest["collected_files"] == 1

    def sql(query: str) -> list[tuple]:
        return duckdb.sql(query.replace("DIR", str(target))).fetchall()

    assert sql("SELECT kind, status, endpoint, deployment FROM 'DIR/jobs.parquet'") == [
        ("batch", "completed", "scores", "onnx")]
    assert sql("SELECT value FROM 'DIR/job_metrics.parquet' WHERE metric = 'rows_written'") == [(6.0,)]
    assert sql("SELECT count(DISTINCT file), count(*) FROM 'DIR/predictions.parquet'") == [(1, 6)]
    breached = sql("SELECT feature, metric, value > threshold FROM 'DIR/monitor_results.parquet' WHERE breached "
                   "ORDER BY feature")  # size moved; colour's mix too (the default categorical metric)
    assert breached == [("colour", "jensen_shannon_distance", True), ("size", "normalized_wasserstein_distance", True)]
    assert sql("SELECT status, breached_signals FROM 'DIR/monitor_runs.parquet'") == [("breached", 1)]
    assert sql("SELECT count(*) FROM read_parquet('DIR/collected/**/*.parquet')") == [(4,)]
    schema = pq.read_schema(target / "monitor_results.parquet")
    assert str(schema.field("started_at").type) == "timestamp[us, tz=UTC]"

    # a second export replaces the first whole; a folder that is not a snapshot is refused
    assert cli("monitor", "run", "drift", cwd=repo).code == 0
    assert cli("analytics", "export", str(target), cwd=repo).code == 0
    assert sql("SELECT count(*) FROM 'DIR/monitor_runs.parquet'") == [(2,)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".analytics")) == []
    other = tmp_path / "other"
    shutil.copytree(repo / "data", other)
    refused = cli("analytics", "export", str(other), cwd=repo)
    assert refused.code == 1 and "is not an analytics snapshot" in refused.err
