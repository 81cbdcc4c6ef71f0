"""plan and apply against the local workspace, driven through the CLI in-process on real Git repositories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import LocalBackend
from tests.helpers import Result, commit_all, write

Cli = Callable[..., Result]


def backend(repo: Path) -> LocalBackend:
    return LocalBackend(repo / ".mlops" / "dev")


def plan_json(cli: Cli, repo: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    res = cli("plan", str(repo), "--format", "json", *extra)
    assert res.code == 0, res.err
    return json.loads(res.out)  # type: ignore[no-any-return]


def actions(plan: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["address"]: c["action"] for c in plan["resource_changes"]}


def test_apply_example_registers_everything(cli: Cli, example: Path) -> None:
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 0, res.err
    assert "model:cancer-onnx:1: created (2 file(s)" in res.out
    assert "Apply complete! Resources: 14 added, 0 changed, 0 destroyed." in res.out
    snap = backend(example).read()
    assert Address(Kind.MODEL, "cancer-onnx", "1") in snap.resources
    assert snap.resources[Address(Kind.TRAFFIC, "cancer")].spec["traffic"] == {"blue": 90, "green": 10}
    assert snap.serial == 14


def test_rerun_is_a_noop_that_says_so(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    serial = backend(example).read().serial
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 0
    assert "Nothing to do" in res.out
    assert backend(example).read().serial == serial
    assert cli("plan", str(example), "--detailed-exitcode").code == 0


def test_detailed_exitcode_reports_changes(cli: Cli, example: Path) -> None:
    res = cli("plan", str(example), "--detailed-exitcode")
    assert res.code == 2
    assert "Plan: 14 to create, 0 to change, 0 to delete." in res.out


def test_plan_is_ordered_by_dependencies(cli: Cli, example: Path) -> None:
    order = list(actions(plan_json(cli, example)))
    assert order.index("model:cancer-onnx:1") < order.index("online-deployment:cancer/blue")
    assert order.index("online-endpoint:cancer") < order.index("online-deployment:cancer/blue")
    assert order.index("online-deployment:cancer/green") < order.index("traffic:cancer")
    assert order.index("environment:sklearn-inference:1") < order.index("component:prep_data:1")
    assert order.index("component:train_classifier:1") < order.index("job:train-cancer-classifier")


def test_changed_model_content_gets_next_version(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    (example / "models" / "cancer-onnx" / "labels.json").write_text('{"0": "m", "1": "b"}')
    commit_all(example, "Relabel classes")
    plan = plan_json(cli, example)
    change = next(c for c in plan["resource_changes"] if c["address"] == "model:cancer-onnx:2")
    assert change["action"] == "create" and change["reason"] == "content changed since version 1"
    assert cli("apply", str(example), "--auto-approve").code == 0
    versions = [r.address.version for r in backend(example).read().versions(Kind.MODEL, "cancer-onnx")]
    assert versions == ["1", "2"]
    assert cli("apply", str(example), "--auto-approve").code == 0  # and no third version
    assert len(backend(example).read().versions(Kind.MODEL, "cancer-onnx")) == 2


def test_tag_change_updates_in_place(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    path = example / "models" / "cancer-sklearn.yml"
    path.write_text(path.read_text().replace("task: classification", "task: diagnosis"))
    plan = plan_json(cli, example)
    assert actions(plan) == {"model:cancer-sklearn:1": "update"}
    fields = plan["resource_changes"][0]["fields"]
    assert fields == [{"path": "tags.task", "before": "classification", "after": "diagnosis", "forces_replace": False}]


def test_explicit_version_content_change_must_bump(cli: Cli, example: Path) -> None:
    path = example / "models" / "cancer-sklearn.yml"
    path.write_text(path.read_text() + "version: '7'\n")
    path_blue = example / "deployments" / "cancer-green.yml"
    path_blue.write_text(path_blue.read_text().replace("cancer-sklearn:1", "cancer-sklearn:7"))
    assert cli("apply", str(example), "--auto-approve").code == 0
    (example / "models" / "cancer-sklearn" / "model.joblib").write_bytes(b"retrained")
    res = cli("plan", str(example))
    assert res.code == 1
    assert "models/cancer-sklearn.yml:" in res.err and "VER001" in res.err and "bump the version" in res.err
    res = cli("validate", str(example))
    assert res.code == 1 and "VER001" in res.out


def test_instance_type_change_forces_replacement(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    path = example / "deployments" / "cancer-blue.yml"
    path.write_text(path.read_text().replace("Standard_DS3_v2", "Standard_F4s_v2"))
    res = cli("plan", str(example))
    assert "must be replaced" in res.out and "# forces replacement" in res.out
    assert "Plan: 1 to create, 0 to change, 1 to delete." in res.out


def test_removed_file_is_deleted_only_with_prune(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    (example / "monitors" / "cancer-drift.yml").unlink()
    res = cli("plan", str(example))
    assert "No changes." in res.out and "schedule:cancer-drift" in res.out and "--prune" in res.out
    plan = plan_json(cli, example, "--prune")
    assert actions(plan) == {"schedule:cancer-drift": "delete"}
    assert cli("apply", str(example), "--auto-approve", "--prune").code == 0
    assert Address(Kind.SCHEDULE, "cancer-drift") not in backend(example).read().resources


def test_model_used_by_live_deployment_cannot_be_archived(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    (example / "models" / "cancer-onnx.yml").unlink()
    res = cli("plan", str(example), "--prune")
    assert res.code == 1
    assert "PLAN001" in res.err and "online-deployment:cancer/blue" in res.err
    res = cli("model", "archive", "cancer-onnx:1", "-C", str(example))
    assert res.code == 1 and "is in use and cannot be archived" in res.err and "set-traffic" in res.err
    # Move blue's traffic away and retire the batch default: now the version may be archived.
    endpoint = example / "endpoints" / "cancer.yml"
    endpoint.write_text(endpoint.read_text().replace("blue: 90", "blue: 0").replace("green: 10", "green: 100"))
    (example / "deployments" / "cancer-batch-onnx.yml").unlink()
    (example / "endpoints" / "cancer-batch.yml").unlink()
    (example / "monitors" / "cancer-drift.yml").unlink()
    (example / "deployments" / "cancer-blue.yml").unlink()
    plan = plan_json(cli, example, "--prune")
    order = list(actions(plan))
    assert actions(plan)["model:cancer-onnx:1"] == "archive"
    assert order.index("traffic:cancer") < order.index("online-deployment:cancer/blue")
    assert order.index("online-deployment:cancer/blue") < order.index("model:cancer-onnx:1")
    assert cli("apply", str(example), "--auto-approve", "--prune").code == 0
    assert backend(example).read().resources[Address(Kind.MODEL, "cancer-onnx", "1")].status == "archived"


def test_traffic_changed_outside_git_is_drift(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    assert cli("drift", str(example)).code == 0
    res = cli("endpoint", "set-traffic", "cancer", "blue=50", "green=50", "-C", str(example))
    assert res.code == 0
    res = cli("drift", str(example))
    assert res.code == 2
    assert "traffic:cancer was changed by tester" in res.out and "traffic.blue: 90 -> 50" in res.out
    res = cli("plan", str(example))
    assert "changed outside the repository" in res.out
    assert cli("apply", str(example), "--auto-approve").code == 0
    assert cli("drift", str(example)).code == 0
    assert backend(example).read().resources[Address(Kind.TRAFFIC, "cancer")].spec["traffic"]["blue"] == 90


def test_set_traffic_rejects_bad_input(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    serial = backend(example).read().serial
    for args in (["blue=60", "green=60"], ["blue=100", "red=0"], ["blue"]):
        res = cli("endpoint", "set-traffic", "cancer", *args, "-C", str(example))
        assert res.code == 1 and res.err.startswith("Error:")
    assert backend(example).read().serial == serial


def test_markdown_plan_has_collapsible_sections(cli: Cli, example: Path) -> None:
    res = cli("plan", str(example), "--format", "markdown")
    assert res.code == 0
    assert res.out.startswith("<!-- mlops-gitops plan -->")
    assert "**Plan: 14 to create, 0 to change, 0 to delete.**" in res.out
    assert res.out.count("<details>") == 14
    assert "+ model:cancer-onnx:1" in res.out


def test_secrets_are_masked(cli: Cli, example: Path) -> None:
    path = example / "deployments" / "cancer-green.yml"
    path.write_text(path.read_text() + "environment_variables:\n  DB_PASSWORD: hunter2\n  LOG_LEVEL: info\n")
    for fmt in ("text", "json", "markdown"):
        res = cli("plan", str(example), "--format", fmt, "--show-all")
        assert "hunter2" not in res.out and "(sensitive " in res.out
        assert "LOG_LEVEL" in res.out and "environment_variables.LOG_LEVEL = \"info\"" not in res.out
        assert '"LOG_LEVEL": "info"' not in res.out, "every value under environment_variables is masked"


def test_validation_errors_stop_plan_and_apply(cli: Cli, example: Path) -> None:
    endpoint = example / "endpoints" / "cancer.yml"
    endpoint.write_text(endpoint.read_text().replace("green: 10", "green: 20"))
    for argv in (("plan", str(example)), ("apply", str(example), "--auto-approve")):
        res = cli(*argv)
        assert res.code == 1 and "TRAFFIC002" in res.err and "Traceback" not in res.err
    assert not (example / ".mlops").exists(), "a failed validation writes nothing"


def test_apply_without_auto_approve_needs_a_terminal(cli: Cli, example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    res = cli("apply", str(example))
    assert res.code == 1 and "--auto-approve" in res.err
    assert backend(example).read().serial == 0


def test_apply_asks_and_honours_no(example: Path) -> None:
    from mlops_gitops.commands.apply import apply

    assert apply(str(example), input_fn=lambda _prompt: "no") == 1
    assert backend(example).read().serial == 0
    assert apply(str(example), input_fn=lambda _prompt: "yes") == 0
    assert backend(example).read().serial == 14


def test_unknown_workspace(cli: Cli, example: Path) -> None:
    res = cli("plan", str(example), "-w", "prod")
    assert res.code == 1 and "unknown workspace 'prod'" in res.err and "dev" in res.err


def test_unwritable_workspace_is_a_clear_error(cli: Cli, example: Path) -> None:
    (example / "blocker").write_text("a file where a folder should be")
    write(example / "mlops.yaml", "workspaces:\n  dev: {path: blocker/ws}\ndefault_workspace: dev\n"
                                   "exclude: ['src/**', '**/conda*.yml', azure-pipelines.yml]\n")
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 1 and "cannot create workspace folder" in res.err and "Traceback" not in res.err


def test_protected_resource_cannot_be_pruned(cli: Cli, example: Path) -> None:
    path = example / "monitors" / "cancer-drift.yml"
    path.write_text(path.read_text() + "x-gitops:\n  protect: true\n")
    assert cli("apply", str(example), "--auto-approve").code == 0
    path.unlink()
    res = cli("plan", str(example), "--prune")
    assert res.code == 1 and "PLAN002" in res.err and "schedule:cancer-drift is protected" in res.err
    res = cli("apply", str(example), "--prune", "--auto-approve")
    assert res.code == 1
    assert Address(Kind.SCHEDULE, "cancer-drift") in backend(example).read().resources


def test_failed_action_stops_only_its_dependents(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_gitops.commands.apply import apply

    def edit_while_prompting(_prompt: str) -> str:
        # The model's file changes after it was planned: its upload must refuse the new content.
        (example / "models" / "cancer-onnx" / "model.onnx").write_bytes(b"not the planned bytes")
        return "yes"

    assert apply(str(example), input_fn=edit_while_prompting) == 1
    captured = capsys.readouterr()
    assert "model:cancer-onnx:1: FAILED" in captured.out and "changed since it was planned" in captured.out
    assert "online-deployment:cancer/blue: SKIPPED: a dependency failed" in captured.out
    assert "Apply failed: 1 action(s) failed" in captured.out
    snap = backend(example).read()
    assert Address(Kind.MODEL, "cancer-onnx", "1") not in snap.resources
    assert Address(Kind.ONLINE_DEPLOYMENT, "cancer/blue") not in snap.resources
    assert Address(Kind.MODEL, "cancer-sklearn", "1") in snap.resources, "independent actions finish"
    assert Address(Kind.ONLINE_DEPLOYMENT, "cancer/green") in snap.resources
    # The next plan picks up the new content as version 1 and the rest of the tree.
    assert apply(str(example), auto_approve=True) == 0
    assert Address(Kind.ONLINE_DEPLOYMENT, "cancer/blue") in backend(example).read().resources
