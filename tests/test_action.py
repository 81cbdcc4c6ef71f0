"""action.yml and the example workflow: valid against GitHub's schemas (as check-jsonschema ships them),
and the action's own script drives `mlops-gitops ci` for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.fake_github import TOKEN, FakeGitHub
from tests.helpers import EXAMPLE, REPO_ROOT

ACTION = REPO_ROOT / "action.yml"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "mlops.yml"


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema")
    assert exe is not None, "check-jsonschema is a test dependency"
    return subprocess.run([exe, "--builtin-schema", schema, str(path)], capture_output=True, text=True)


@pytest.mark.slow
def test_action_and_workflow_validate_against_githubs_schemas() -> None:
    for schema, path in (("vendor.github-actions", ACTION), ("vendor.github-workflows", WORKFLOW)):
        res = check_jsonschema(schema, path)
        assert res.returncode == 0, res.stdout + res.stderr


def test_the_action_is_thin_and_passes_inputs_through_the_environment() -> None:
    action = YAML(typ="safe").load(ACTION.read_text())
    assert set(action["inputs"]) >= {"command", "path", "workspace", "github-token"}
    assert {k: v["value"] for k, v in action["outputs"].items()} == {
        "has-changes": "${{ steps.run.outputs.has-changes }}", "plan-json": "${{ steps.run.outputs.plan-json }}",
        "summary": "${{ steps.run.outputs.summary }}"}
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), "inputs reach scripts as environment variables, never inline"
    workflow = YAML(typ="safe").load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    assert workflow["permissions"]["pull-requests"] == "write" and workflow["permissions"]["issues"] == "write"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()


@pytest.mark.slow
def test_the_actions_script_posts_the_plan(example: Path, gh: FakeGitHub, tmp_path: Path) -> None:
    script = next(s["run"] for s in YAML(typ="safe").load(ACTION.read_text())["runs"]["steps"]
                  if s.get("id") == "run")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "c" * 40}}}))
    output = tmp_path / "output"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/ml", "GITHUB_SHA": "d" * 40,
           "GITHUB_REF": "refs/pull/7/merge", "GITHUB_API_URL": gh.api, "GITHUB_SERVER_URL": gh.base,
           "GITHUB_RUN_ID": "9", "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(tmp_path),
           "MLOPS_GITOPS_GITHUB_TOKEN": TOKEN, "INPUT_COMMAND": "", "INPUT_PATH": str(example),
           "INPUT_WORKSPACE": "dev", "INPUT_RUNTIME": "none"}
    env.pop("GITHUB_TOKEN", None)
    res = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(gh.comments) == 1 and gh.statuses[0]["sha"] == "c" * 40
    assert "has-changes<<" in output.read_text()
