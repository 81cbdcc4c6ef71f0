"""Progressive rollouts (`x-gitops.rollout` on an online endpoint): apply moves traffic in steps, judges each
pause by the figures the endpoint host recorded in the workspace, and restores the split on a breach."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mlops_gitops.apply.rollout import judge, p99_ms, split_at
from tests.helpers import Result, commit_all, copy_example, init_repo, write
from tests.serving_helpers import SAMPLE, Host, deployment, served_tree

Cli = Callable[..., Result]
FAILING = '''
import itertools
calls = itertools.count()

def init():
    pass

def run(raw_data):
    if next(calls) % 2:
        raise ValueError("green fails every other request")
    return {"ok": True}
'''


def test_splits_and_judging() -> None:
    assert split_at({"blue": 100}, "green", 10) == {"green": 10, "blue": 90}
    assert split_at({"blue": 60, "red": 40}, "green", 50) == {"green": 50, "blue": 30, "red": 20}
    assert p99_ms([0] * 15) is None and p99_ms([0, 0, 0, 100] + [0] * 11) == 5.0
    start = {"e/green": {"requests": 0, "errors": 0, "buckets": [0] * 15},
             "e/blue": {"requests": 10, "errors": 0, "buckets": [10] + [0] * 14}}
    end = {"e/green": {"requests": 20, "errors": 4, "buckets": [0, 0, 0, 20] + [0] * 11},
           "e/blue": {"requests": 110, "errors": 0, "buckets": [110] + [0] * 14}}
    figures, breaches = judge({"max_error_rate": 0.1, "max_p99_latency_ms": 2, "max_error_rate_over_old": 0.5},
                              start, end, "e", "green", ["blue"])
    assert figures["error_rate"] == 0.2 and figures["old_requests"] == 100 and figures["p99_latency_ms"] == 5.0
    assert breaches == ["error rate 20.00% > max_error_rate 10.00% (4 of 20)",
                        "p99 latency 5 ms > max_p99_latency_ms 2"]


def test_conditions_on_any_host_figure_and_against_the_old_deployments() -> None:
    fast, slow = [0, 0, 0, 10] + [0] * 11, [0] * 8 + [10] + [0] * 6  # 5 ms and 250 ms buckets
    start = {"e/green": {"requests": 0, "errors": 0, "latency_us": 0, "buckets": [0] * 15}}
    end = {"e/green": {"requests": 10, "errors": 0, "latency_us": 2_000_000, "buckets": slow},
           "e/blue": {"requests": 10, "errors": 0, "latency_us": 40_000, "buckets": fast}}
    health = {"metrics": ["mean_latency_ms < 100", "p50_latency_ms_over_old <= 100", "requests >= 10"]}
    figures, breaches = judge(health, start, end, "e", "green", ["blue"])
    assert figures["mean_latency_ms"] == 200.0 and figures["p50_latency_ms_over_old"] == 245.0
    assert breaches == ["mean_latency_ms 200 fails 'mean_latency_ms < 100'",
                        "p50_latency_ms_over_old 245 fails 'p50_latency_ms_over_old <= 100' (old deployments: 5)"]
    assert judge({"metrics": ["p50_latency_ms_over_old <= 1"]}, start, end, "e", "green", [])[1] == [], \
        "no old deployment answered: nothing to compare against, no breach"


def test_validate_names_a_step_list_off_the_traffic_and_an_unknown_figure(tmp_path: Path, cli: Cli) -> None:
    served_tree(tmp_path, {"blue": 0, "green": 100})
    endpoint = tmp_path / "endpoints" / "cancer.yml"
    endpoint.write_text(endpoint.read_text() + "x-gitops:\n  rollout:\n    steps: [10, 50]\n    health:\n"
                                               "      metrics: ['p99_latency_ms < 300', 'cpu_percent < 80']\n")
    res = cli("validate", cwd=tmp_path)
    assert res.code == 1
    assert ("endpoints/cancer.yml:9:17: error ROLL001: rollout steps end at 50%, but the traffic of endpoint "
            "'cancer' gives no deployment that share (it declares 100%)") in res.out, res.out
    assert "endpoints/cancer.yml:11:41: error ROLL002: rollout condition on 'cpu_percent'" in res.out, res.out
    assert res.out.count("ROLL00") == 2, "p99_latency_ms is a figure the host records"


class Load:
    """Requests to the endpoint from a thread while apply walks the rollout: every answer kept."""

    def __init__(self, host: Host) -> None:
        self.host, self.answers, self.stop = host, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.host.url, timeout=30) as client:
            while not self.stop.is_set():
                res = client.post("/endpoints/cancer/score", json=SAMPLE,
                                  headers={"authorization": f"Bearer {self.host.keys[0]}"})
                self.answers.append((res.status_code, res.headers.get("azureml-model-deployment"), res.text))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _rollout(root: Path, health: str) -> None:
    endpoint = root / "endpoints" / "cancer.yml"
    text = endpoint.read_text().replace("  blue: 100\n  green: 0\n", "  blue: 0\n  green: 100\n")
    endpoint.write_text(text + "x-gitops:\n  rollout:\n    steps: [10, 50, 100]\n    pause: 1s\n"
                               f"    health: {health}\n")


@pytest.mark.slow
def test_a_rollout_walks_its_steps_under_load_without_a_failed_request(
        serving: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_FIGURES_INTERVAL_S", "0.1")
    served_tree(serving, {"blue": 100, "green": 0})
    assert cli("apply", "--auto-approve", cwd=serving).code == 0
    _rollout(serving, "{max_error_rate: 0.01, max_p99_latency_ms: 2500, min_requests: 1, "
             "metrics: ['mean_latency_ms_over_old < 2500']}")
    with Load(Host(serving / ".mlops" / "dev")) as load:
        res = cli("apply", "--auto-approve", cwd=serving)
    assert res.code == 0, res.out + res.err
    assert load.answers and all(code == 200 for code, _, _ in load.answers), "no request failed"
    served = {d for _, d, _ in load.answers}
    assert served == {"blue", "green"}, served
    status = json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=serving).out)
    assert status["traffic"] == {"blue": 0, "green": 100} and status["state"] == "completed: green at 100%"
    assert [s["share"] for s in status["rollout"]["steps"]] == [10, 50]
    assert all(s["requests"] >= 1 for s in status["rollout"]["steps"]), status


@pytest.mark.slow
def test_a_failing_deployment_is_rolled_back_within_one_step(
        serving: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_FIGURES_INTERVAL_S", "0.1")
    served_tree(serving, {"blue": 100, "green": 0}, green="script")
    (serving / "src" / "score.py").write_text(FAILING)
    assert cli("apply", "--auto-approve", cwd=serving).code == 0
    _rollout(serving, "{max_error_rate: 0.05}")
    with Load(Host(serving / ".mlops" / "dev")) as load:
        res = cli("apply", "--auto-approve", cwd=serving)
    assert res.code == 1
    assert "rolled back: green at 10% breached error rate" in res.out + res.err, res.out + res.err
    failed = [(code, text) for code, _, text in load.answers if code != 200]
    assert failed and all("green fails" in text for _, text in failed), "only green's answers failed"
    status = json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=serving).out)
    assert status["traffic"] == {"blue": 100, "green": 0} and status["state"].startswith("rolled back")
    events = [json.loads(line)["type"] for line in cli("events", "list", "--format", "json", cwd=serving)
              .out.splitlines() if line.strip()]
    assert "release.rolled_back" in events
    again = cli("plan", cwd=serving)
    assert "the last rollout was rolled back" in again.out, again.out


@pytest.mark.slow
def test_an_apply_killed_mid_rollout_is_named_by_the_next_plan_and_walked_on(
        serving: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_FIGURES_INTERVAL_S", "0.1")
    served_tree(serving, {"blue": 100, "green": 0})
    assert cli("apply", "--auto-approve", cwd=serving).code == 0
    _rollout(serving, "{max_error_rate: 0.01}")
    endpoint = serving / "endpoints" / "cancer.yml"
    endpoint.write_text(endpoint.read_text().replace("pause: 1s", "pause: 10m"))
    proc = subprocess.Popen([sys.executable, "-m", "mlops_gitops", "apply", str(serving), "--auto-approve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the first step is recorded, then the apply holds for 10 minutes
            shown = cli("rollout", "status", "cancer", "--format", "json", cwd=serving)
            if shown.code == 0 and json.loads(shown.out)["state"].startswith("stopped at step 1"):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the rollout never reached its first step")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=serving).out)["traffic"] == {
        "blue": 90, "green": 10}, "killed half-way: the split of the step it held"
    endpoint.write_text(endpoint.read_text().replace("pause: 10m", "pause: 0.2s"))
    plan = cli("plan", cwd=serving)
    assert "a rollout stopped at step 1 of 3 (green at 10%) when its apply was interrupted" in plan.out, plan.out
    res = cli("apply", "--auto-approve", cwd=serving)
    assert res.code == 0, res.out + res.err
    status = json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=serving).out)
    assert status["traffic"] == {"blue": 0, "green": 100}
    assert [s["share"] for s in status["rollout"]["steps"]] == [50], "it went on from 10%, not from the start"


@pytest.mark.slow
def test_a_worse_model_is_gated_and_a_better_one_promoted_through_the_rollout_under_load(
        serving: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worse model is gated and nothing changes in service; a better one goes from data to production in
    one apply: the run registers it, the gate passes, `trained` serves it, and the traffic walks 10% -> 50%
    -> 100% while every request is answered."""
    monkeypatch.setenv("MLOPS_GITOPS_FIGURES_INTERVAL_S", "0.1")
    repo = init_repo(copy_example(serving), "The example")
    for folder in ("deployments", "monitors"):
        shutil.rmtree(repo / folder)
    (repo / "endpoints" / "cancer-batch.yml").unlink()
    endpoint = repo / "endpoints" / "cancer.yml"
    endpoint.write_text(endpoint.read_text().replace("  blue: 90\n  green: 10\n", "  blue: 100\n  trained: 0\n"))
    write(repo / "deployments" / "blue.yml", deployment("blue", "model: azureml:cancer-onnx:1\n"))
    write(repo / "deployments" / "trained.yml", deployment("trained", "model: azureml:cancer-classifier@latest\n"
                                                           "x-gitops:\n  gate:\n    metrics: ['accuracy >= 0.9']\n"))
    commit_all(repo, "Serve what the training registers, at 0% first")
    first = cli("apply", "--auto-approve", cwd=repo)
    assert first.code == 0, first.out + first.err

    train = repo / "pipelines" / "train.yml"
    train.write_text(train.read_text().replace("  regularisation: 1.0", "  regularisation: 0.0001"))
    endpoint.write_text(endpoint.read_text().replace("  blue: 100\n  trained: 0\n", "  blue: 0\n  trained: 100\n")
                        + "x-gitops:\n  rollout:\n    steps: [10, 50, 100]\n    pause: 1s\n"
                          "    health: {max_error_rate: 0.01, min_requests: 1}\n")
    commit_all(repo, "Retrain with C=0.0001 and move the traffic to it")
    with Load(Host(repo / ".mlops" / "dev")) as load:
        gated = cli("apply", "--auto-approve", cwd=repo)
    assert gated.code == 1 and "gated: online-deployment:cancer/trained stays on model:cancer-classifier:1" in \
        gated.out + gated.err, gated.out + gated.err
    assert {d for _, d, _ in load.answers} == {"blue"}, "a worse model: nothing changes in service"
    assert json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=repo).out)["traffic"] == {
        "blue": 100, "trained": 0}, "the gated deployment's traffic change is stopped with it"

    train.write_text(train.read_text().replace("  regularisation: 0.0001", "  regularisation: 0.5"))
    commit_all(repo, "Retrain with C=0.5")
    with Load(Host(repo / ".mlops" / "dev")) as load:
        res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 0, res.out + res.err
    assert load.answers and all(code == 200 for code, _, _ in load.answers), "no request failed"
    assert {d for _, d, _ in load.answers} == {"blue", "trained"}
    shown = json.loads(cli("state", "show", "online-deployment:cancer/trained", "--format", "json", cwd=repo).out)
    assert shown["derived"]["refs"]["model"] == "cancer-classifier:3", "the version this apply's run registered"
    status = json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=repo).out)
    assert status["traffic"] == {"blue": 0, "trained": 100} and status["state"] == "completed: trained at 100%"
    assert [s["share"] for s in status["rollout"]["steps"]] == [10, 50]
