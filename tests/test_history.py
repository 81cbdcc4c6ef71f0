"""Provenance on every change, `history` joined with git log, and the reading commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import LocalBackend
from tests.helpers import Result, commit_all, git

Cli = Callable[..., Result]


def test_provenance_records_commit_author_message_and_pr(cli: Cli, example: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    head = git(example, "rev-parse", "HEAD")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/42/merge")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.delenv("MLOPS_GITOPS_ACTOR")
    assert cli("apply", str(example), "--auto-approve").code == 0
    res = LocalBackend(example / ".mlops" / "dev").read().resources[Address(Kind.MODEL, "cancer-onnx", "1")]
    p = res.provenance
    assert p["git.commit"] == head
    assert p["git.author"] == "Ada Lovelace <ada@example.com>"
    assert p["git.message"] == "Add the cancer classifier and its endpoints"
    assert p["git.pr"] == "42" and p["applied_by"] == "octocat"
    assert p["git.file_uncommitted"] is False
    assert p["content"]["path"] == res.derived["paths"]["path"]["sha256"]
    assert p["applied_at"].endswith("+00:00")


def test_pr_from_merge_commit_message(cli: Cli, example: Path) -> None:
    path = example / "models" / "cancer-sklearn.yml"
    path.write_text(path.read_text().replace("task: classification", "task: diagnosis"))
    commit_all(example, "Merge pull request #7 from ada/retag\n\nRetag the model", "Grace Hopper <grace@example.com>")
    assert cli("apply", str(example), "--auto-approve").code == 0
    res = LocalBackend(example / ".mlops" / "dev").read().resources[Address(Kind.MODEL, "cancer-sklearn", "1")]
    assert res.provenance["git.pr"] == "7"
    assert res.provenance["git.author"] == "Grace Hopper <grace@example.com>"


def test_uncommitted_changes_are_flagged(cli: Cli, example: Path) -> None:
    path = example / "models" / "cancer-sklearn.yml"
    path.write_text(path.read_text().replace("task: classification", "task: diagnosis"))
    assert cli("apply", str(example), "--auto-approve").code == 0
    res = LocalBackend(example / ".mlops" / "dev").read().resources[Address(Kind.MODEL, "cancer-sklearn", "1")]
    assert res.provenance["git.file_uncommitted"] is True


def test_history_joins_workspace_log_and_git_log(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    (example / "models" / "cancer-onnx" / "labels.json").write_text("{}")
    second = commit_all(example, "Retrain with relabelled classes", "Grace Hopper <grace@example.com>")
    assert cli("apply", str(example), "--auto-approve").code == 0
    path = example / "models" / "cancer-onnx.yml"
    path.write_text(path.read_text().replace("task: classification", "task: triage"))
    commit_all(example, "Not applied yet")
    res = cli("history", "model:cancer-onnx", "-C", str(example))
    assert res.code == 0, res.err
    assert "create   model:cancer-onnx:2  by tester" in res.out
    assert f"commit {second[:12]}" in res.out and "Grace Hopper <grace@example.com>: Retrain" in res.out
    lines = res.out.splitlines()
    not_applied = next(line for line in lines if "Not applied yet" in line)
    assert "applied" not in not_applied.split("Not applied")[0]
    by_file = cli("history", "models/cancer-onnx.yml", "-C", str(example), "--format", "json")
    data = json.loads(by_file.out)
    assert [c["address"] for c in data["changes"]] == ["model:cancer-onnx:1", "model:cancer-onnx:2"]
    assert len(data["commits"]) == 3


def test_history_of_unknown_resource(cli: Cli, example: Path) -> None:
    res = cli("history", "model:nope", "-C", str(example))
    assert res.code == 1 and "no history" in res.err
    res = cli("history", "gadget:x", "-C", str(example))
    assert res.code == 1 and "unknown kind 'gadget'" in res.err


def test_model_list_show_download(cli: Cli, example: Path, tmp_path: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    res = cli("model", "list", "-C", str(example), "--format", "json")
    names = [(m["name"], m["version"]) for m in json.loads(res.out)]
    assert names == [("cancer-onnx", "1"), ("cancer-sklearn", "1")]
    shown = json.loads(cli("model", "show", "cancer-onnx:1", "-C", str(example)).out)
    assert {f["path"] for f in shown["files"]} == {"model.onnx", "labels.json"}
    res = cli("model", "download", "cancer-onnx", "--dir", str(tmp_path / "dl"), "-C", str(example))
    assert res.code == 0
    got = tmp_path / "dl" / "cancer-onnx" / "1"
    for name in ("model.onnx", "labels.json"):
        assert (got / name).read_bytes() == (example / "models" / "cancer-onnx" / name).read_bytes()
    res = cli("model", "show", "cancer-onnx:9", "-C", str(example))
    assert res.code == 1 and "versions: 1" in res.err


def test_archive_and_restore_outside_git(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    endpoint = example / "endpoints" / "cancer.yml"  # green off traffic: its model may be archived
    endpoint.write_text(endpoint.read_text().replace("blue: 90", "blue: 100").replace("green: 10", "green: 0"))
    assert cli("apply", str(example), "--auto-approve").code == 0
    assert cli("model", "archive", "cancer-sklearn:1", "-C", str(example)).code == 0
    listed = cli("model", "list", "-C", str(example)).out
    assert "cancer-sklearn" not in listed
    assert "archived" in cli("model", "list", "--include-archived", "-C", str(example)).out
    plan = cli("plan", str(example))
    assert "restore archived resource" in plan.out
    drift = cli("drift", str(example))
    assert drift.code == 2 and "model:cancer-sklearn:1 was archived by tester" in drift.out
    assert cli("model", "restore", "cancer-sklearn:1", "-C", str(example)).code == 0
    assert "No changes." in cli("plan", str(example)).out


def test_search_by_tag(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    res = cli("search", "--tag", "framework=onnx", "-C", str(example))
    assert res.out.split() == ["model:cancer-onnx:1"]
    res = cli("search", "--tag", "task=classification", "--tag", "framework=scikit-learn", "-C", str(example))
    assert res.out.split() == ["model:cancer-sklearn:1"]
    res = cli("search", "--tag", "task", "-C", str(example))
    assert res.out.split() == ["model:cancer-onnx:1", "model:cancer-sklearn:1"]
    assert cli("search", "--tag", "=x", "-C", str(example)).code == 1


def test_state_show(cli: Cli, example: Path) -> None:
    res = cli("state", "show", "-C", str(example))
    assert "empty: nothing has been applied yet" in res.out
    assert cli("apply", str(example), "--auto-approve").code == 0
    res = cli("state", "show", "-C", str(example), "--format", "json")
    data = json.loads(res.out)
    assert data["serial"] == 14 and data["lock"] is None and len(data["resources"]) == 14
    one = json.loads(cli("state", "show", "traffic:cancer", "-C", str(example)).out)
    assert one["spec"]["traffic"] == {"blue": 90, "green": 10}
    assert cli("state", "show", "model:ghost:1", "-C", str(example)).code == 1


def test_endpoint_list(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    rows = json.loads(cli("endpoint", "list", "-C", str(example), "--format", "json").out)
    online = next(r for r in rows if r["name"] == "cancer")
    assert online["deployments"] == ["blue", "green"] and online["traffic"] == {"blue": 90, "green": 10}
    batch = next(r for r in rows if r["name"] == "cancer-batch")
    assert batch["default_deployment"] == "onnx"
