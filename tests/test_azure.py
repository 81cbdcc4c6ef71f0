"""Azure Pipelines: the step templates and example pipeline, and `mlops-gitops ci` against a local Azure Repos API."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.fake_http import json_server
from tests.helpers import EXAMPLE, REPO_ROOT, Result

TEMPLATES = REPO_ROOT / "templates" / "azure-pipelines"
TOKEN = "azp-access-token-secret"


class FakeAzureRepos:
    """Pull-request threads of one repository; records every request."""

    def __init__(self) -> None:
        self.threads: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail: int | None = None
        self.server, base = json_server(self.route, lambda method, path, body, auth:
                                        self.requests.append((method, path)))
        self.collection = f"{base}/org/"

    def route(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "unauthorized"}
        if self.fail:
            return self.fail, {"message": "denied"}
        base = "/org/proj/_apis/git/repositories/repo-1/pullRequests/12/threads"
        bare, _, query = path.partition("?")
        assert query == "api-version=7.1"
        if bare == base and method == "GET":
            return 200, {"value": list(self.threads.values()), "count": len(self.threads)}
        if bare == base and method == "POST":
            tid = len(self.threads) + 1
            self.threads[tid] = {"id": tid, "status": body["status"],
                                 "comments": [{"id": 1, **body["comments"][0]}]}
            return 200, self.threads[tid]
        m = re.fullmatch(rf"{base}/(\d+)/comments/(\d+)", bare)
        if m and method == "PATCH":
            self.threads[int(m.group(1))]["comments"][int(m.group(2)) - 1]["content"] = body["content"]
            return 200, {}
        return 404, {"message": "not found"}


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeAzureRepos]:
    fake = FakeAzureRepos()
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    for key, value in {"TF_BUILD": "True", "BUILD_REASON": "PullRequest", "SYSTEM_PULLREQUEST_PULLREQUESTID": "12",
                       "SYSTEM_COLLECTIONURI": fake.collection, "SYSTEM_TEAMPROJECT": "proj",
                       "BUILD_REPOSITORY_ID": "repo-1", "SYSTEM_ACCESSTOKEN": TOKEN, "BUILD_BUILDID": "5",
                       "AGENT_TEMPDIRECTORY": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    yield fake
    fake.server.shutdown()


@pytest.mark.slow
def test_templates_and_example_pipeline_validate_against_the_azure_pipelines_schema() -> None:
    exe = shutil.which("check-jsonschema")
    assert exe is not None
    for path in [*sorted(TEMPLATES.glob("*.yml")), EXAMPLE / "azure-pipelines.yml"]:
        res = subprocess.run([exe, "--regex-variant", "python", "--builtin-schema", "vendor.azure-pipelines",
                              str(path)], capture_output=True, text=True)
        assert res.returncode == 0, (path, res.stdout + res.stderr)


def test_each_template_runs_the_shared_steps_with_its_command() -> None:
    yaml = YAML(typ="safe")
    for command in ("validate", "plan", "apply", "drift"):
        doc = yaml.load((TEMPLATES / f"{command}.yml").read_text())
        assert doc["steps"] == [{"template": "steps.yml", "parameters": {
            "command": command, **{p: f"${{{{ parameters.{p} }}}}" for p in
                                   ("path", "workspace", "toolPath", "pythonVersion", "condition")}}}]
    steps = yaml.load((TEMPLATES / "steps.yml").read_text())["steps"]
    run = next(s for s in steps if s.get("name") == "mlops")
    assert "${{" not in run["script"], "parameters reach the script as environment variables"
    assert run["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"


def test_pull_request_plan_is_one_thread_with_variables(example: Path, cli: Any, azure: FakeAzureRepos) -> None:
    res: Result = cli("ci", str(example))
    assert res.code == 0, res.out + res.err
    assert "##vso[task.setvariable variable=hasChanges;isOutput=true]true" in res.out
    assert "##vso[task.setvariable variable=summary;isOutput=true]Plan: 14 to create" in res.out
    assert "##vso[task.uploadsummary]" in res.out
    assert len(azure.threads) == 1
    first = azure.threads[1]["comments"][0]["content"]
    assert first.startswith("<!-- mlops-gitops plan -->") and "Plan: 14 to create" in first
    assert cli("ci", str(example)).code == 0
    assert len(azure.threads) == 1 and [m for m, _ in azure.requests].count("PATCH") == 1
    assert TOKEN not in res.out + res.err


def test_validation_errors_are_logged_issues_and_fail(example: Path, cli: Any, azure: FakeAzureRepos) -> None:
    path = example / "deployments" / "cancer-blue.yml"
    path.write_text(path.read_text().replace("azureml:cancer-onnx:1", "azureml:cancer-nothing:1"))
    res = cli("ci", str(example))
    assert res.code == 1
    issue = next(line for line in res.out.splitlines() if line.startswith("##vso[task.logissue type=error"))
    assert "sourcepath=" in issue and "deployments/cancer-blue.yml;linenumber=" in issue and "code=REF001" in issue
    assert "validation failed" in azure.threads[1]["comments"][0]["content"]


def test_a_refused_thread_post_is_a_warning_and_apply_runs_on_main(example: Path, cli: Any, azure: FakeAzureRepos,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    azure.fail = 403
    res = cli("ci", str(example))
    assert res.code == 0 and "##vso[task.logissue type=warning;]Azure Repos" in res.out and "HTTP 403" in res.out
    monkeypatch.setenv("BUILD_REASON", "IndividualCI")
    monkeypatch.setenv("BUILD_SOURCEBRANCH", "refs/heads/main")
    res = cli("ci", str(example))
    assert res.code == 0 and "Apply complete!" in res.out
    assert "##vso[task.setvariable variable=summary;isOutput=true]applied" in res.out
