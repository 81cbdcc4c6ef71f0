"""Monitors that run: a schedule's create_monitor compares production data with reference data (data assets),
per feature, with Azure's metric names and thresholds; recorded, reported, and raising events when breached."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mlops_gitops.runtime.monitoring.metrics import SignalError
from mlops_gitops.runtime.monitoring.signals import Table, evaluate
from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]


class Page(HTMLParser):
    """What a test reads of a report page: external references, the tags used, each feature's plot."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tags: set[str] = set()
        self.plots: dict[str, str] = {}  # feature -> "breach" or ""
        self.titles: list[str] = []
        self._feature_class: str | None = None
        self._in: list[str] = []

    @classmethod
    def read(cls, path: Path) -> Page:
        page = cls()
        page.feed(path.read_text(encoding="utf-8"))
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.external += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "div" and "feature" in (values.get("class") or "").split():
            self._feature_class = "breach" if "breach" in (values.get("class") or "") else ""
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "h3" and self._feature_class is not None:
            self.plots.setdefault(data.strip(), self._feature_class)
        if self._in and self._in[-1] == "title":
            self.titles.append(f"{next(reversed(self.plots), '')} {data}")


def table(path: Path, shift: float = 0.0, seed: int = 0, rows: int = 500, extra: str = "") -> Path:
    rng = np.random.default_rng(seed)
    colours = rng.choice(["red", "green", "blue"], size=rows, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5])
    lines = [f"size,weight,colour{',' + extra if extra else ''}"]
    lines += [f"{a:.4f},{b:.4f},{c}{',1' if extra else ''}"
              for a, b, c in zip(rng.normal(10 + shift, 2, rows), rng.normal(70, 5, rows), colours, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_drift_metrics_separate_a_shift_from_sampling_noise(tmp_path: Path) -> None:
    ref = Table.read([table(tmp_path / "ref.csv")], "reference")
    same = Table.read([table(tmp_path / "same.csv", seed=1)], "production")
    moved = Table.read([table(tmp_path / "moved.csv", shift=3.0, seed=2)], "production")
    limits = [{"applicable_feature_type": "numerical", "metric_name": "normalized_wasserstein_distance",
               "threshold": 0.2},
              {"applicable_feature_type": "numerical", "metric_name": "two_sample_kolmogorov_smirnov_test",
               "threshold": 0.01},
              {"applicable_feature_type": "categorical", "metric_name": "pearsons_chi_squared_test",
               "threshold": 0.01}]
    quiet = evaluate("d", "data_drift", ref, same, None, limits)
    assert quiet.passed, [vars(f) for f in quiet.features]
    loud = evaluate("d", "data_drift", ref, moved, None, limits)
    breached = {f.feature: f.breached for f in loud.features}
    assert breached["size"] == ["normalized_wasserstein_distance", "two_sample_kolmogorov_smirnov_test"]
    assert breached["weight"] == [] and breached["colour"] == ["pearsons_chi_squared_test"]
    assert {f.feature: f.kind for f in loud.features} == {"size": "numerical", "weight": "numerical",
                                                          "colour": "categorical"}


def test_bad_signals_say_what_is_wrong(tmp_path: Path) -> None:
    ref = Table.read([table(tmp_path / "ref.csv")], "reference")
    other = Table.read([table(tmp_path / "other.csv", extra="flag")], "production")
    with pytest.raises(SignalError, match="different columns: only in production: flag"):
        evaluate("d", "data_drift", ref, other, None, None)
    with pytest.raises(SignalError, match="unknown metric 'kl_divergence'"):
        evaluate("d", "data_drift", ref, ref, None, [{"metric_name": "kl_divergence", "threshold": 1}])
    (tmp_path / "empty.csv").write_text("size,weight,colour\n")
    with pytest.raises(SignalError, match="no rows"):
        Table.read([tmp_path / "empty.csv"], "production_data")


def monitored(root: Path, production: str = "azureml:moved:1") -> Path:
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev}\ndefault_workspace: dev\n")
    table(root / "data" / "reference.csv")
    table(root / "data" / "moved.csv", shift=3.0, seed=2)
    for name, file in (("reference", "reference.csv"), ("moved", "moved.csv")):
        write(root / "data" / f"{name}.yml", f"$schema: {AZ}/data.schema.json\nname: {name}\nversion: '1'\n"
                                             f"type: uri_file\npath: ./{file}\n")
    write(root / "schedules" / "drift.yml", (
        f"$schema: {AZ}/schedule.schema.json\nname: drift\ntrigger: {{type: cron, expression: '0 3 * * *'}}\n"
        "create_monitor:\n  monitoring_signals:\n    features:\n      type: data_drift\n"
        f"      production_data:\n        input_data: {{type: uri_file, path: '{production}'}}\n"
        "      reference_data:\n        input_data: {type: uri_file, path: 'azureml:reference:1'}\n"
        "      features: [size, colour]\n      metric_thresholds:\n"
        "        - {applicable_feature_type: numerical, metric_name: population_stability_index, threshold: 0.2}\n"
        "    quality:\n      type: data_quality\n"
        f"      production_data:\n        input_data: {{type: uri_file, path: '{production}'}}\n"
        "      reference_data:\n        input_data: {type: uri_file, path: 'azureml:reference:1'}\n"))
    return init_repo(root)


def test_a_monitor_runs_is_recorded_reported_and_raises_events(cli: Cli, tmp_path: Path) -> None:
    repo = monitored(tmp_path / "repo")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    res = cli("monitor", "run", "drift", cwd=repo)
    assert res.code == 0, res.out + res.err
    assert "Monitor drift: breached" in res.out
    assert "features (data_drift): breached: size population_stability_index=" in res.out
    assert "quality (data_quality): passed" in res.out
    run_id = res.out.split("(run ", 1)[1].split(")", 1)[0]
    shown = cli("monitor", "show", run_id, cwd=repo).out
    assert "| size | numerical | population_stability_index |" in shown and "| breached |" in shown
    recorded = json.loads(cli("monitor", "show", run_id, "--format", "json", cwd=repo).out)
    assert recorded["data"]["features"]["reference"] == "data:reference:1"
    page = Page.read(Path(recorded["html_report"]))
    assert page.external == [] and "script" not in page.tags, "a self-contained page: nothing fetched, nothing run"
    assert page.plots["size"] == "breach" and set(page.plots) == {"size", "colour", "weight"}
    size = next(f for f in recorded["signals"][0]["features"] if f["feature"] == "size")
    shares = size["distribution"]
    assert len(shares["edges"]) == 21 and sum(shares["reference"]) == pytest.approx(1.0, abs=1e-4)
    assert shares["production"][-1] > shares["reference"][-1], "the shifted production fills the upper bins"
    assert any("size" in t and "reference" in t for t in page.titles), "each bar says its bin and both shares"
    assert len(recorded["data"]["features"]["production_sha256"]) == 64
    listed = cli("events", "list", "--format", "json", cwd=repo).out.splitlines()
    types = [json.loads(line)["type"] for line in listed if line.strip()]  # one CloudEvent per line
    assert "monitor.signal_breached" in types and "data_drift.detected" in types
    # fired by its schedule: recorded as the occurrence's run
    fired = cli("schedule", "run-due", "--at", "2030-01-01T04:00:00Z", cwd=repo)
    assert "drift @ 2030-01-01T03:00:00+00:00: completed run drift-" in fired.out
    assert len(json.loads(cli("monitor", "list", "--format", "json", cwd=repo).out)) == 2
    # lineage: the run is downstream of what it compared, and its schedule ran it
    around = json.loads(cli("lineage", f"monitor-run:{run_id}", "--format", "json", cwd=repo).out)
    edges = {(e["from"], e["to"], e["relation"]) for e in around["edges"]}
    assert {("data:reference:1", f"monitor-run:{run_id}", "features.reference_data"),
            ("data:moved:1", f"monitor-run:{run_id}", "quality.production_data"),
            ("schedule:drift", f"monitor-run:{run_id}", "ran")} <= edges, edges
    downstream = json.loads(cli("lineage", "data:moved:1", "--format", "json", cwd=repo).out)
    assert sum(n["kind"] == "monitor-run" for n in downstream["nodes"]) == 2, "both runs read it"
    assert "no monitor run nope" in cli("lineage", "monitor-run:nope", cwd=repo).err


def test_a_monitor_without_production_data_fails_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    repo = monitored(tmp_path / "repo", production="azureml:absent:1")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    res = cli("monitor", "run", "drift", cwd=repo)
    assert res.code == 1 and "azureml:absent:1 is not a data asset with files in the workspace" in res.err
    assert json.loads(cli("monitor", "list", "--format", "json", cwd=repo).out)[0]["status"] == "failed"


def test_validate_names_an_unknown_metric_and_takes_azures_two_forms(cli: Cli, tmp_path: Path) -> None:
    repo = monitored(tmp_path / "repo")
    drift = repo / "schedules" / "drift.yml"
    text = drift.read_text()
    drift.write_text(text.replace(
        "      metric_thresholds:\n        - {applicable_feature_type: numerical, "
        "metric_name: population_stability_index, threshold: 0.2}\n",
        "      metric_thresholds:\n        numerical: {population_stability_index: 0.2}\n"
        "        categorical: {pearsons_chi_squared_test: 0.01}\n"))
    assert cli("validate", cwd=repo).code == 0  # the CLI's map form
    ran = cli("apply", "--auto-approve", cwd=repo), cli("monitor", "run", "drift", cwd=repo)
    assert "colour pearsons_chi_squared_test=" in ran[1].out, ran[1].out + ran[1].err
    mapped = drift.read_text()
    drift.write_text(mapped.replace("categorical: {pearsons_chi_squared_test: 0.01}", "categorical: {psi: 0.01}"))
    assert "schedules/drift.yml:15:23: error MON001: unknown metric 'psi'" in cli("validate", cwd=repo).out
    drift.write_text(text.replace("metric_name: population_stability_index", "metric_name: kl_divergence"))
    res = cli("validate", cwd=repo)
    assert res.code == 1
    assert ("schedules/drift.yml:14:48: error MON001: unknown metric 'kl_divergence' for a data_drift signal on "
            "numerical features") in res.out


def test_shared_columns_leave_out_what_only_one_side_has(tmp_path: Path) -> None:
    ref = Table.read([table(tmp_path / "ref.csv", extra="target")], "reference")
    prod = Table.read([table(tmp_path / "prod.csv", seed=1)], "production")
    with pytest.raises(SignalError, match="only in the reference: target"):
        evaluate("d", "data_drift", ref, prod, None, None)
    result = evaluate("d", "data_drift", ref, prod, None, None, shared_columns=True)
    assert [f.feature for f in result.features] == ["size", "weight", "colour"]


@pytest.mark.slow
def test_without_reference_data_a_monitor_compares_with_its_models_training_data(
        cli: Cli, example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training pipeline of example-repo registers cancer-classifier:1 from breast-cancer-train; a monitor of
    a deployment serving it, with no reference_data, finds that data through lineage."""
    import shutil

    from tests.helpers import commit_all

    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    for folder in ("endpoints", "deployments", "monitors"):  # train first: nothing to serve yet
        shutil.rmtree(example / folder)
    commit_all(example, "Only the training side")
    assert cli("apply", "--auto-approve", cwd=example).code == 0
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "none")  # the deployment recorded, not served: lineage is enough
    write(example / "endpoints" / "cancer.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: cancer\n"
                                                "auth_mode: key\n")
    write(example / "deployments" / "trained.yml", (
        f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: trained\nendpoint_name: cancer\n"
        "model: azureml:cancer-classifier:1\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n"))
    write(example / "monitors" / "drift.yml", (
        f"$schema: {AZ}/schedule.schema.json\nname: drift\ntrigger: {{type: cron, expression: '0 3 * * *'}}\n"
        "create_monitor:\n  monitoring_target: {endpoint_deployment_id: 'azureml:cancer:trained'}\n"
        "  monitoring_signals:\n    inputs:\n      type: data_drift\n"
        "      production_data:\n        input_data: {type: uri_file, path: 'azureml:breast-cancer-train:1'}\n"))
    commit_all(example, "Serve and monitor the trained model")
    applied = cli("apply", "--auto-approve", cwd=example)
    assert applied.code == 0, applied.out + applied.err
    ran = cli("monitor", "run", "drift", cwd=example)
    assert ran.code == 0, ran.out + ran.err
    run_id = ran.out.split("(run ", 1)[1].split(")", 1)[0]
    record = json.loads(cli("monitor", "show", run_id, "--format", "json", cwd=example).out)
    facts = record["data"]["inputs"]
    assert facts["reference"] == "data:breast-cancer-train:1"
    found = facts["reference_found_through"]
    assert found["deployment"] == "online-deployment:cancer/trained" and found["model"] == "model:cancer-classifier:1"
    assert found["run"].startswith("train-cancer-classifier"), found
    assert record["status"] == "passed", "the training data against itself does not drift"
    assert "the training data of model:cancer-classifier:1" in cli("monitor", "show", run_id, cwd=example).out
    assert facts["target"] == {"deployment": "online-deployment:cancer/trained", "model": "model:cancer-classifier:1"}
    graph = json.loads(cli("lineage", "model:cancer-classifier:1", "--format", "json", cwd=example).out)
    edges = {(e["from"], e["to"], e["relation"]) for e in graph["edges"]}
    assert ("model:cancer-classifier:1", f"monitor-run:{run_id}", "monitored model") in edges
    assert ("online-deployment:cancer/trained", f"monitor-run:{run_id}", "monitored") in edges
    around = json.loads(cli("lineage", run_id, "--format", "json", cwd=example).out)
    assert ("data:breast-cancer-train:1", f"monitor-run:{run_id}", "inputs.reference_data") in {
        (e["from"], e["to"], e["relation"]) for e in around["edges"]}
