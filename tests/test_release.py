"""Release automation: a deployment naming a model @latest serves the version a pipeline of the same apply
registers (one apply from data to production), behind a release gate on the run's metrics and the version in
service."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.plan.gates import check_gate, importance_changes
from mlops_gitops.state import ActualResource
from tests.fake_github import TOKEN, FakeGitHub
from tests.helpers import AZ, Result, commit_all, write

Cli = Callable[..., Result]
TRAIN = "train-cancer-classifier"


def _model(version: str, metrics: dict[str, float], conversion: dict[str, object] | None = None) -> ActualResource:
    return ActualResource(address=Address(Kind.MODEL, "m", version), spec={}, derived={}, content_hash="",
                          spec_hash="", applied_spec=None, applied_hash=None, status="active", managed=True,
                          source_file="", created_at="", updated_at="",
                          provenance={"run.metrics": metrics, **({"conversion": conversion} if conversion else {})})


def test_a_gate_says_which_condition_failed_with_both_values() -> None:
    gate = {"metrics": ["accuracy >= 0.9", "loss <= 0.3"], "not_worse_than": "current", "tolerance": 0.01}
    assert check_gate(gate, _model("2", {"accuracy": 0.95, "loss": 0.2}), _model("1", {"accuracy": 0.955,
                                                                                    "loss": 0.21})) == []
    failed = check_gate(gate, _model("2", {"accuracy": 0.93, "loss": 0.35}), _model("1", {"accuracy": 0.96,
                                                                                       "loss": 0.2}))
    assert failed == [
        "loss <= 0.3: model:m:2 has 0.35",
        "accuracy not worse than current: model:m:2 has 0.93, model:m:1 in service has 0.96 (tolerance 0.01)",
        "loss not worse than current: model:m:2 has 0.35, model:m:1 in service has 0.2 (tolerance 0.01)"]
    missing = check_gate({"metrics": ["f1 > 0.5"]}, _model("2", {"accuracy": 0.9}), None)
    assert missing == ["f1 > 0.5: model:m:2 has no metric f1 (its run wrote accuracy)"]
    outside = _model("2", {}, {"within_tolerance": False, "outside_tolerance": ["max_abs_diff 0.2 > 0.0001"]})
    assert check_gate({}, outside, None) == [
        "parity: the ONNX conversion model:m:2 is outside its tolerance (max_abs_diff 0.2 > 0.0001)"]


def test_importance_changes_name_the_features_that_moved_or_changed_rank() -> None:
    def report(**means: float) -> dict[str, object]:
        return {"features": [{"name": k, "mean": v} for k, v in sorted(means.items(), key=lambda kv: -kv[1])]}

    old = report(radius=0.30, texture=0.10, area=0.05, smoothness=0.01)
    new = report(radius=0.29, texture=0.02, area=0.06, smoothness=0.04)
    moved = importance_changes(new, old, 0.02)
    assert [(m["feature"], m["delta"], tuple(m["rank"])) for m in moved] == [
        ("texture", -0.08, (2, None)), ("smoothness", 0.03, (None, 3))], moved
    assert importance_changes(old, old, 0.0) == [] and importance_changes(None, old, 0.02) == []


def test_validate_names_a_malformed_gate_condition(cli: Cli, example: Path) -> None:
    write(example / "deployments" / "cancer-blue.yml",
          (example / "deployments" / "cancer-blue.yml").read_text() + "x-gitops:\n  gate:\n"
          "    metrics: ['accuracy is high']\n")
    res = cli("validate", cwd=example)
    assert res.code == 1 and "deployments/cancer-blue.yml:" in res.out and "write METRIC OP NUMBER" in res.out, res.out


def _deployment(repo: Path, gate: str) -> None:
    write(repo / "endpoints" / "cancer.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: cancer\n"
                                             "auth_mode: key\ntraffic: {trained: 100}\n")
    write(repo / "deployments" / "trained.yml", (
        f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: trained\nendpoint_name: cancer\n"
        "model: azureml:cancer-classifier@latest\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n" + gate))


def _retrain(repo: Path, c: str) -> None:
    train = repo / "pipelines" / "train.yml"
    text = train.read_text()
    start = text.index("  regularisation: ")
    end = text.index("\n", start)
    train.write_text(text[:start] + f"  regularisation: {c}" + text[end:])
    commit_all(repo, f"Train with C={c}")


def _served(cli: Cli, repo: Path) -> str:
    shown = json.loads(cli("state", "show", "online-deployment:cancer/trained", "--format", "json", cwd=repo).out)
    return str(shown["derived"]["refs"]["model"])


@pytest.mark.slow
def test_one_apply_trains_gates_and_promotes(cli: Cli, example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")  # the pipeline's steps run
    for folder in ("endpoints", "deployments", "monitors"):
        shutil.rmtree(example / folder)
    _deployment(example, "x-gitops:\n  gate:\n    metrics: ['accuracy >= 0.9']\n    not_worse_than: current\n"
                         "    tolerance: 0.02\n")
    model = example / "models" / "cancer-trained.yml"  # each version's permutation importance, for governance
    model.write_text(model.read_text() + "x-gitops:\n  explain:\n    data: azureml:breast-cancer-train@latest\n"
                                         "    label: target\n    rows: 200\n    repeats: 3\n")
    commit_all(example, "Train, and serve what the training registers")
    first = cli("apply", "--auto-approve", cwd=example)
    assert first.code == 0, first.out + first.err
    assert _served(cli, example) == "cancer-classifier:1"
    importance = json.loads(cli("model", "show", "cancer-classifier:1", cwd=example).out)["feature_importance"]
    assert importance["scoring"] == "accuracy" and importance["baseline"] > 0.9 and importance["rows"] == 200
    assert len(importance["features"]) == 30 and importance["data"] == "breast-cancer-train:1"
    means = [f["mean"] for f in importance["features"]]
    assert means == sorted(means, reverse=True) and means[0] > 0, "ranked, and the model depends on something"
    top = importance["features"][0]["name"]
    assert f"importance: {top} " in cli("lineage", "model:cancer-classifier:1", cwd=example).out

    typo = example / "deployments" / "trained.yml"
    typo.write_text(typo.read_text().replace("'accuracy >= 0.9'", "'acuracy >= 0.9'"))
    warned = cli("plan", cwd=example)  # against the workspace: its model's run wrote no such metric
    assert "deployments/trained.yml:9:15: warning GATE001: gate metric 'acuracy'" in warned.out + warned.err, warned.err
    checked = cli("validate", cwd=example)  # validate reads the workspace too: the same diagnostic
    assert checked.code == 0 and "deployments/trained.yml:9:15: warning GATE001" in checked.out, checked.out
    typo.write_text(typo.read_text().replace("'acuracy >= 0.9'", "'accuracy >= 0.9'"))
    _retrain(example, "0.5")
    plan = cli("plan", cwd=example)
    assert plan.code == 0, plan.err
    assert f'"cancer-classifier:1" -> "cancer-classifier:(next, after job:{TRAIN})"' in plan.out, plan.out
    assert f"serves the version of cancer-classifier that job:{TRAIN} registers in this apply" in plan.out
    comment = cli("plan", "--format", "markdown", cwd=example).out  # the pull request's sticky comment
    assert "**Model releases**" in comment and "<code>model:cancer-classifier:1</code> in service" in comment
    assert "Gate: <code>accuracy &gt;= 0.9</code>, not worse than current — **at apply**" in comment, comment
    assert "| accuracy | 0.9" in comment and "| after the run |" in comment
    assert ("Its feature importance will be measured on <code>azureml:breast-cancer-train@latest</code> when it is "
            "registered") in comment, comment
    held = cli("plan", "--no-promote", "--format", "json", cwd=example)
    assert not any(c["address"] == "online-deployment:cancer/trained"
                   for c in json.loads(held.out)["resource_changes"]), "--no-promote: @latest as it is now"
    saved = example.parent / "promote.plan.json"  # a saved plan carries the deferred reference
    assert cli("plan", "--out", str(saved), cwd=example).code == 0
    deferred = next(c for c in json.loads(saved.read_text())["resource_changes"]
                    if c["address"] == "online-deployment:cancer/trained")["deferred"]
    assert deferred == {"model": {"model": "cancer-classifier", "job": TRAIN, "planned": "2"}}
    promoted = cli("apply", str(saved), cwd=example)
    assert promoted.code == 0, promoted.out + promoted.err
    assert _served(cli, example) == "cancer-classifier:2", "one apply: trained, registered and served"

    _retrain(example, "0.0001")  # a much weaker model: the gate keeps version 2 in service
    gated = cli("apply", "--auto-approve", cwd=example)
    assert gated.code == 1
    assert "gated: online-deployment:cancer/trained stays on model:cancer-classifier:2" in gated.out + gated.err
    assert "accuracy >= 0.9: model:cancer-classifier:3 has " in gated.out + gated.err
    assert _served(cli, example) == "cancer-classifier:2"
    events = [json.loads(line) for line in cli("events", "list", "--format", "json", cwd=example).out.splitlines()
              if line.strip()]
    again = cli("plan", "--format", "markdown", cwd=example).out  # :3 exists now: the verdict is known at plan
    assert "— **accuracy &gt;= 0.9: model:cancer-classifier:3 has 0." in again, again
    assert "Feature importance (permutation) moved notably:" in again, again  # a weaker model leans elsewhere
    assert "| feature | in service | candidate | change |" in again
    gate_events = [e for e in events if e["type"] == "release.gated"]
    assert gate_events and gate_events[-1]["data"]["model"] == "model:cancer-classifier:3"


@pytest.mark.slow
def test_ci_train_shows_a_pull_requests_numbers_before_merge_without_touching_the_workspace(
        cli: Cli, example: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    for folder in ("endpoints", "deployments", "monitors"):
        shutil.rmtree(example / folder)
    _deployment(example, "x-gitops:\n  gate:\n    metrics: ['accuracy >= 0.9']\n")
    commit_all(example, "Train, and serve what the training registers")
    assert cli("apply", "--auto-approve", cwd=example).code == 0
    runs_before = cli("job", "list", cwd=example).out
    gh = FakeGitHub()
    try:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "b" * 40}}}))
        (tmp_path / "runner").mkdir()
        for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH":
                           str(event), "GITHUB_REPOSITORY": "acme/ml", "GITHUB_API_URL": gh.api,
                           "GITHUB_TOKEN": TOKEN, "RUNNER_TEMP": str(tmp_path / "runner")}.items():
            monkeypatch.setenv(key, value)
        _retrain(example, "0.0001")  # the pull request: a much weaker model
        res = cli("ci", "--train", str(example))
        body = next(iter(gh.comments.values()))["body"]
    finally:
        gh.close()
    assert res.code == 1, res.out + res.err
    assert "the release gate fails on this check's training" in res.err, res.err
    assert "Trained by this check (run <code>" in body, body
    assert "— **accuracy &gt;= 0.9: model:cancer-classifier:next has 0." in body, body
    assert "after the run" not in body, "the candidate's numbers are the check's run's"
    assert gh.statuses[-1]["state"] == "failure"
    assert cli("job", "list", cwd=example).out == runs_before, "the workspace's runs are untouched"
    models = cli("model", "list", cwd=example).out
    assert "cancer-classifier            1 " in models and "cancer-classifier            2 " not in models
