"""Messages that say what happened: each names the case it is in, not a neighbouring one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.commands.apply import apply
from mlops_gitops.textsafe import shorten
from tests.helpers import AZ, Result, write
from tests.serving_helpers import SAMPLE, served_tree, stop_host

Cli = Callable[..., Result]


@pytest.fixture
def applied(example: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "none")  # state only
    write(example / "models" / "spare.yml", f"$schema: {AZ}/model.schema.json\nname: spare\npath: ./cancer-onnx\n")
    assert apply(str(example), auto_approve=True) == 0
    return example


def test_an_ambiguous_run_prefix_lists_the_runs_it_could_be(applied: Path, cli: Cli) -> None:
    runs = LocalBackend(applied / ".mlops" / "dev").runs.records
    for run_id in ("train-20261207-aaa1", "train-20261207-aab2"):
        runs.start(run_id, "train", "pipelines/train.yml", None, {}, [])
    both = cli("job", "show", "train-20261207-aa", "-C", str(applied))
    assert both.code == 1 and "ambiguous" in both.err
    assert "train-20261207-aaa1" in both.err and "train-20261207-aab2" in both.err
    one = cli("job", "show", "train-20261207-aab", "-C", str(applied), "--format", "json")
    assert one.code == 0 and json.loads(one.out)["id"] == "train-20261207-aab2"
    assert "no run nothing-like-it" in cli("job", "show", "nothing-like-it", "-C", str(applied)).err
    # LIKE's wildcards in a prefix are literal characters, not patterns
    assert "no run train_" in cli("job", "show", "train_", "-C", str(applied)).err


def test_archive_restore_and_lineage_of_archived_models(applied: Path, cli: Cli) -> None:
    here = ["-C", str(applied)]
    active = cli("model", "restore", "cancer-onnx:1", *here)
    assert active.code == 0 and "already active" in active.out and "restored" not in active.out
    archived = cli("model", "archive", "spare", *here)  # NAME alone: its latest version
    assert archived.code == 0 and "model:spare:1: archived" in archived.out
    again = cli("model", "archive", "spare:1", *here)
    assert again.code == 0 and "already archived" in again.out
    lineage = cli("lineage", "model:spare", *here)
    assert lineage.code == 0 and "model:spare:1" in lineage.out
    latest = cli("lineage", "model:cancer-onnx@latest", *here)
    assert latest.code == 0 and "model:cancer-onnx:1" in latest.out
    missing = cli("lineage", "model:cancer-onnx:7", *here)
    assert missing.code == 1 and "its versions: 1" in missing.err
    restored = cli("model", "restore", "spare", *here)  # NAME alone: its latest archived version
    assert restored.code == 0 and "model:spare:1: restored" in restored.out


def test_a_model_a_batch_deployment_uses_names_the_batch_default_not_traffic(applied: Path, cli: Cli,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    write(applied / "batch" / "endpoint.yml", f"$schema: {AZ}/batchEndpoint.schema.json\nname: nightly\n"
                                              "defaults: {deployment_name: scorer}\n")
    write(applied / "batch" / "scorer.yml", f"$schema: {AZ}/modelBatchDeployment.schema.json\nname: scorer\n"
                                            "endpoint_name: nightly\nmodel: azureml:cancer-onnx:1\n")
    assert apply(str(applied), auto_approve=True) == 0
    refused = cli("model", "archive", "cancer-onnx:1", "-C", str(applied))
    assert refused.code == 1 and "batch-deployment:nightly/scorer" in refused.err
    assert "defaults.deployment_name" in refused.err
    assert "online-deployment:cancer/blue" in refused.err and "set-traffic" in refused.err


def test_history_of_a_change_made_outside_git_names_how_it_was_made(applied: Path, cli: Cli) -> None:
    assert cli("model", "archive", "cancer-onnx:1", "-C", str(applied)).code == 1  # still served
    assert cli("endpoint", "set-traffic", "cancer", "blue=100", "green=0", "-C", str(applied)).code == 0
    shown = cli("history", "endpoints/cancer.yml", "-C", str(applied))
    assert shown.code == 0 and "None" not in shown.out
    assert "(outside Git)" in shown.out and "apply " in shown.out


def test_shorten_cuts_at_a_word_and_marks_the_cut() -> None:
    subject = "Retrain the cancer classifier on the refreshed data and register the next version"
    short = shorten(subject, 40)
    assert short.endswith("…") and len(short) <= 40 and subject.startswith(short[:-1])
    assert subject[len(short) - 1] == " "  # the cut falls between words
    assert shorten("Short subject\nbody", 40) == "Short subject"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = served_tree(tmp_path / "repo", {"blue": 100, "green": 0}, green="script")
    yield root
    stop_host(root / ".mlops" / "dev")


@pytest.mark.slow
def test_logs_and_invoke_say_what_the_host_is_doing(host: Path, cli: Cli) -> None:
    assert apply(str(host), auto_approve=True) == 0
    here = ["-C", str(host)]
    quiet = cli("endpoint", "logs", "cancer", "--deployment", "green", *here)
    assert quiet.code == 0 and "is serving" in quiet.out and "No logs" not in quiet.out
    show = json.loads(cli("endpoint", "show", "cancer", *here).out)
    assert show["deployments"]["green"]["model"] is None  # a scoring script without a registered model
    assert show["deployments"]["blue"]["model"] == "cancer-onnx:1"
    assert cli("serve", "--stop", *here).code == 0
    stopped = cli("endpoint", "logs", "cancer", "--deployment", "green", *here)
    assert "not running" in stopped.out
    (host / "request.json").write_text(json.dumps(SAMPLE))
    invoked = cli("endpoint", "invoke", "cancer", "--request-file", str(host / "request.json"), *here)
    assert invoked.code == 0 and "was not running: this request started it" in invoked.err
    again = cli("endpoint", "invoke", "cancer", "--request-file", str(host / "request.json"), *here)
    assert again.code == 0 and "not running" not in again.err
    assert LocalBackend(host / ".mlops" / "dev").get(Address(Kind.ONLINE_ENDPOINT, "cancer")) is not None
