"""`mlops-gitops ci` in GitHub Actions, against a local GitHub API (GitHub Enterprise-style /api/v3)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_gitops.integrations.github import COMMENT_LIMIT, DRIFT_LABEL, MONITOR_LABEL, truncate
from mlops_gitops.plan.render.markdown import MARKER
from tests.fake_github import TOKEN, FakeGitHub
from tests.helpers import AZ, Result, write

Cli = Callable[..., Result]


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()


@pytest.fixture
def actions(gh: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Path]]:
    """Set up the environment of a workflow run for an event; returns the runner's files."""

    def setup(event: str, payload: dict[str, object], ref: str = "refs/pull/7/merge") -> dict[str, Path]:
        files = {name: tmp_path / name for name in ("event.json", "output", "summary.md")}
        files["event.json"].write_text(json.dumps(payload))
        (tmp_path / "runner").mkdir(exist_ok=True)
        for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event,
                           "GITHUB_EVENT_PATH": str(files["event.json"]), "GITHUB_REPOSITORY": "acme/ml",
                           "GITHUB_SHA": "a" * 40, "GITHUB_REF": ref, "GITHUB_API_URL": gh.api,
                           "GITHUB_SERVER_URL": gh.base, "GITHUB_RUN_ID": "42", "GITHUB_TOKEN": TOKEN,
                           "GITHUB_OUTPUT": str(files["output"]), "GITHUB_STEP_SUMMARY": str(files["summary.md"]),
                           "RUNNER_TEMP": str(tmp_path / "runner")}.items():
            monkeypatch.setenv(key, value)
        return files

    return setup


PR_EVENT = {"pull_request": {"number": 7, "head": {"sha": "b" * 40}}, "repository": {"default_branch": "main"}}


def outputs(path: Path) -> dict[str, str]:
    text, found = path.read_text(), {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        found[name] = "\n".join(lines[i + 1:end])
        i = end + 1
    return found


def test_pull_request_gets_one_sticky_plan_comment_a_status_and_outputs(
        example: Path, cli: Cli, gh: FakeGitHub, actions: Callable[..., dict[str, Path]]) -> None:
    files = actions("pull_request", PR_EVENT)
    res = cli("ci", str(example))
    assert res.code == 0, res.err + res.out
    assert len(gh.comments) == 1
    body = next(iter(gh.comments.values()))["body"]
    assert body.startswith(MARKER) and "Plan: 14 to create" in body and "<details>" in body
    assert gh.statuses == [{"sha": "b" * 40, "state": "success", "target_url": f"{gh.base}/acme/ml/actions/runs/42",
                            "description": "Plan: 14 to create, 0 to change, 0 to delete.",
                            "context": "mlops-gitops/dev"}]
    found = outputs(files["output"])
    assert found["has-changes"] == "true" and found["summary"].startswith("Plan: 14 to create")
    assert json.loads(Path(found["plan-json"]).read_text())["format_version"] == "1.0"
    assert "Plan: 14 to create" in files["summary.md"].read_text()

    write(example / "models" / "cancer-onnx.yml",
          (example / "models" / "cancer-onnx.yml").read_text().replace("served by onnxruntime", "in onnxruntime"))
    assert cli("ci", str(example)).code == 0
    assert len(gh.comments) == 1, "the comment is edited, not duplicated"
    assert [r.method for r in gh.requests if "/issues/comments/" in r.path] == ["PATCH"]
    assert TOKEN not in res.out + res.err


def test_validation_errors_become_annotations_and_a_failed_status(example: Path, cli: Cli, gh: FakeGitHub,
                                                                  actions: Callable[..., dict[str, Path]]) -> None:
    actions("pull_request", PR_EVENT)
    path = example / "deployments" / "cancer-blue.yml"
    path.write_text(path.read_text().replace("azureml:cancer-onnx:1", "azureml:cancer-nothing:1"))
    res = cli("ci", str(example))
    assert res.code == 1
    assert "::error file=" in res.out and "deployments/cancer-blue.yml,line=" in res.out and "REF001" in res.out
    assert gh.statuses[-1]["state"] == "failure"
    assert "validation failed" in next(iter(gh.comments.values()))["body"]


def test_a_long_plan_is_truncated_below_the_comment_limit(example: Path, cli: Cli, gh: FakeGitHub,
                                                          actions: Callable[..., dict[str, Path]]) -> None:
    for i in range(300):
        write(example / "data" / "many" / f"d{i:03}.yml", f"$schema: {AZ}/data.schema.json\nname: many-{i}\n"
              f"type: uri_file\npath: ../breast-cancer.csv.dvc\ndescription: {'lorem ipsum ' * 12}\n")
    files = actions("pull_request", PR_EVENT)
    assert cli("ci", str(example)).code == 0
    body = next(iter(gh.comments.values()))["body"]
    assert len(body) < COMMENT_LIMIT and "truncated" in body and "job summary" in body
    assert body.count("```") % 2 == 0 and body.count("<details>") == body.count("</details>")
    assert len(files["summary.md"].read_text()) > COMMENT_LIMIT, "the job summary has the whole plan"


def test_push_to_the_default_branch_applies_and_records_a_deployment(example: Path, cli: Cli, gh: FakeGitHub,
                                                                     actions: Callable[..., dict[str, Path]]) -> None:
    actions("push", {"repository": {"default_branch": "main"}}, ref="refs/heads/main")
    res = cli("ci", str(example))
    assert res.code == 0 and "Apply complete!" in res.out
    assert [(d["environment"], d["ref"]) for d in gh.deployments] == [("dev", "a" * 40)]
    assert [s["state"] for s in gh.deployment_statuses] == ["success"]
    assert not gh.comments and not gh.statuses


def test_api_failures_are_warnings_and_never_change_the_outcome(example: Path, cli: Cli, gh: FakeGitHub,
                                                                actions: Callable[..., dict[str, Path]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    actions("push", {"repository": {"default_branch": "main"}}, ref="refs/heads/main")
    gh.fail["POST /repos/acme/ml/deployments"] = 403
    res = cli("ci", str(example))
    assert res.code == 0, "a successful apply stays a success when GitHub refuses the deployment record"
    assert "::warning title=mlops-gitops::GitHub: recording the deployment to dev failed (HTTP 403)" in res.out
    assert "lacks a permission" in res.out and TOKEN not in res.out

    actions("pull_request", PR_EVENT)
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    res = cli("ci", str(example))
    assert res.code == 0 and "HTTP 401" in res.out and "wrong" not in res.out.replace("wrong or", "")
    monkeypatch.delenv("GITHUB_TOKEN")
    assert "no token" in cli("ci", str(example)).out

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    gh.fail["POST /repos/acme/ml/statuses"] = 502
    res = cli("ci", str(example))
    assert res.code == 0 and "setting the commit status" in res.out and "HTTP 502" in res.out


@pytest.mark.slow
def test_failed_apply_is_a_failure_with_a_failed_deployment(example: Path, cli: Cli, gh: FakeGitHub,
                                                            actions: Callable[..., dict[str, Path]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")  # the endpoint's deployment cannot start
    path = example / "deployments" / "cancer-green.yml"
    path.write_text(path.read_text() + "environment_variables: {FAIL: '1'}\n")
    (example / "src" / "score.py").write_text("raise RuntimeError('this scoring script cannot load')\n")
    actions("push", {"repository": {"default_branch": "main"}}, ref="refs/heads/main")
    res = cli("ci", str(example))
    assert res.code == 1
    assert [s["state"] for s in gh.deployment_statuses] == ["failure"]
    from mlops_gitops.backends.local import LocalBackend

    ws = example / ".mlops" / "dev"
    backend = LocalBackend(ws, runtime="process")
    assert backend.deployer is not None
    backend.deployer.controller.stop()


def test_scheduled_drift_check_keeps_one_issue_and_closes_it(example: Path, cli: Cli, gh: FakeGitHub,
                                                             actions: Callable[..., dict[str, Path]]) -> None:
    assert cli("apply", "--auto-approve", cwd=example).code == 0
    assert cli("endpoint", "set-traffic", "cancer", "blue=50", "green=50", cwd=example).code == 0
    actions("schedule", {"repository": {"default_branch": "main"}}, ref="refs/heads/main")
    assert cli("ci", str(example)).code == 0
    assert cli("ci", str(example)).code == 0
    drift_issues = [i for i in gh.issues.values() if DRIFT_LABEL in i["labels"]]
    assert len(drift_issues) == 1 and drift_issues[0]["state"] == "open"
    assert "traffic:cancer" in drift_issues[0]["body"]
    assert cli("apply", "--auto-approve", cwd=example).code == 0  # restores the repository's split
    last = cli("ci", str(example))
    assert last.code == 0, last.err
    assert drift_issues[0]["state"] == "closed", (last.out, [(r.method, r.path) for r in gh.requests[-6:]])


def test_truncate_keeps_fences_and_sections_closed() -> None:
    body = "intro\n" + "".join(f"<details><summary>r{i}</summary>\n\n```diff\n{'+ x = 1' * 40}\n```\n</details>\n"
                               for i in range(500))
    cut = truncate(body, 10_000, "See the job summary.")
    assert len(cut) < 10_000 and cut.endswith("See the job summary.")
    assert cut.count("```") % 2 == 0 and cut.count("<details>") == cut.count("</details>")
    assert truncate("short", 10_000) == "short"


def test_ci_outside_a_ci_system_says_so(example: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    res = cli("ci", str(example))
    assert res.code == 1 and "runs inside GitHub Actions" in res.err


def test_the_scheduled_check_keeps_an_issue_for_a_breached_monitor(tmp_path: Path, cli: Cli, gh: FakeGitHub,
                                                                   actions: Callable[..., dict[str, Path]]) -> None:
    from tests.test_monitors import monitored

    repo = monitored(tmp_path / "repo")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    assert cli("monitor", "run", "drift", cwd=repo).code == 0  # breached: size moved
    actions("schedule", {"repository": {"default_branch": "main"}}, ref="refs/heads/main")
    first = cli("ci", str(repo))
    assert first.code == 0, first.err
    assert "Monitor issue opened (drift):" in first.out
    assert cli("ci", str(repo)).code == 0  # updated, not opened twice
    issues = [i for i in gh.issues.values() if MONITOR_LABEL in i["labels"]]
    assert len(issues) == 1 and issues[0]["state"] == "open" and issues[0]["title"] == "Monitor 'drift' breached"
    assert "| size | numerical | population_stability_index |" in issues[0]["body"]
    # production data back to the reference's: the next run passes and the issue is closed
    drift = repo / "schedules" / "drift.yml"
    drift.write_text(drift.read_text().replace("azureml:moved:1", "azureml:reference:1"))
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    assert cli("monitor", "run", "drift", cwd=repo).code == 0
    last = cli("ci", str(repo))
    assert "Monitor issue closed (drift):" in last.out and issues[0]["state"] == "closed"
