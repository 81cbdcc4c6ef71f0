"""`plan --out` then `apply PLAN`: exactly that plan, refused when the workspace or the tree moved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.plan.planfile import _signature, load_plan
from tests.helpers import Result

Cli = Callable[..., Result]


def serial(repo: Path) -> int:
    return LocalBackend(repo / ".mlops" / "dev").read().serial


def test_saved_plan_applies_exactly(cli: Cli, example: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    res = cli("plan", str(example), "--out", str(plan_file))
    assert res.code == 0 and f"mlops-gitops apply {plan_file}" in res.out
    data = json.loads(plan_file.read_text())
    assert data["format_version"] == "1.0" and data["workspace"]["serial"] == 0
    assert len(data["resource_changes"]) == 14
    res = cli("apply", str(plan_file))
    assert res.code == 0, res.err
    assert serial(example) == 14


def test_stale_plan_is_refused_when_workspace_moved(cli: Cli, example: Path, tmp_path: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    path = example / "models" / "cancer-sklearn.yml"
    path.write_text(path.read_text().replace("task: classification", "task: diagnosis"))
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(example), "--out", str(plan_file)).code == 0
    assert cli("endpoint", "set-traffic", "cancer", "blue=100", "green=0", "-C", str(example)).code == 0
    before = serial(example)
    res = cli("apply", str(plan_file))
    assert res.code == 1 and "stale" in res.err and f"serial {before - 1} -> {before}" in res.err
    assert serial(example) == before


def test_stale_plan_is_refused_when_tree_changed(cli: Cli, example: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(example), "--out", str(plan_file)).code == 0
    path = example / "models" / "cancer-sklearn.yml"
    path.write_text(path.read_text().replace("task: classification", "task: diagnosis"))
    res = cli("apply", str(plan_file))
    assert res.code == 1 and "the repository changed since it was planned" in res.err
    assert serial(example) == 0


def test_plan_for_another_workspace_is_refused(cli: Cli, example: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(example), "--out", str(plan_file)).code == 0
    assert cli("apply", str(example), "--auto-approve").code == 0
    data = json.loads(plan_file.read_text())
    data["workspace"]["workspace_id"] = "00000000-0000-0000-0000-000000000000"
    plan_file.write_text(json.dumps(data))
    res = cli("apply", str(plan_file))
    assert res.code == 1 and "different workspace" in res.err


def test_corrupt_plan_file(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"format_version": "1.0", "workspace": ')
    res = cli("apply", str(bad))
    assert res.code == 1 and "plan file is corrupt" in res.err and f"{bad}:1:" in res.err
    bad.write_text('{"hello": "world"}')
    res = cli("apply", str(bad))
    assert res.code == 1 and "not an mlops-gitops plan" in res.err
    bad.write_text('{"format_version": "9.0"}')
    res = cli("apply", str(bad))
    assert res.code == 1 and "not supported" in res.err
    res = cli("apply", str(tmp_path / "missing.json"))
    assert res.code == 1 and "cannot read plan file" in res.err
    assert "Traceback" not in res.err


def test_an_edited_plan_is_refused_whatever_was_edited(cli: Cli, example: Path, tmp_path: Path) -> None:
    """What the file shows is what apply executes: a hidden or invented action breaks the signature."""
    assert cli("apply", str(example), "--auto-approve").code == 0
    (example / "monitors" / "cancer-drift.yml").unlink()
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(example), "--prune", "--out", str(plan_file)).code == 0
    original = json.loads(plan_file.read_text())
    deletes = [c for c in original["resource_changes"] if c["action"] == "delete"]
    assert deletes, "the plan deletes the monitor's schedule"

    def edited(change: Callable[[dict[str, object]], None]) -> Path:
        data = json.loads(json.dumps(original))
        change(data)
        target = tmp_path / f"edited-{len(list(tmp_path.glob('edited-*')))}.json"
        target.write_text(json.dumps(data, indent=2))
        return target

    hidden = edited(lambda d: d.__setitem__("resource_changes", [c for c in d["resource_changes"]  # type: ignore[attr-defined]
                                                                   if c not in deletes]))
    nulled = edited(lambda d: d["workspace"].__setitem__("workspace_id", None))  # type: ignore[index]
    unsigned = edited(lambda d: d.pop("signature"))
    before = serial(example)
    for path, message in ((hidden, "does not carry this workspace's signature"),
                          (unsigned, "does not carry this workspace's signature"),
                          (nulled, "different workspace")):
        res = cli("apply", str(path))
        assert res.code == 1 and message in res.err, (path, res.err)
    assert serial(example) == before, "nothing was applied"
    assert cli("apply", str(plan_file)).code == 0


def test_plan_out_gives_a_new_workspace_its_identity(cli: Cli, example: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(example), "--out", str(plan_file)).code == 0
    data = json.loads(plan_file.read_text())
    assert data["workspace"]["workspace_id"] == LocalBackend(example / ".mlops" / "dev").read().workspace_id
    assert data["signature"].startswith("hmac-sha256:")


def test_a_plan_written_before_the_rename_still_loads(cli: Cli, example: Path, tmp_path: Path) -> None:
    # Plans and stores of earlier releases called the workspace id "lineage"; they still load and apply.
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(example), "--out", str(plan_file)).code == 0
    data = json.loads(plan_file.read_text())
    data["workspace"] = {"lineage" if k == "workspace_id" else k: v for k, v in data["workspace"].items()}
    key = LocalBackend(example / ".mlops" / "dev").read().plan_key()
    assert key is not None
    data["signature"] = _signature(data, key)  # as the earlier release signed it
    plan_file.write_text(json.dumps(data))
    assert load_plan(plan_file).workspace_id == data["workspace"]["lineage"]
    res = cli("apply", str(plan_file))
    assert res.code == 0, res.err
