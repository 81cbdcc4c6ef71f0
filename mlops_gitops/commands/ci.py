"""`mlops-gitops ci`: what a workflow run should do, decided from the CI system's environment.

GitHub Actions: a pull request validates (errors become annotations on the changed lines), plans, posts
the plan as one sticky comment and sets a commit status; a push to the default branch applies and
records a GitHub Deployment for the workspace; a scheduled run checks drift and keeps one issue open
while the workspace differs from Git. The exit code is the real outcome of validate/plan/apply: a
GitHub API failure is reported as a warning and never turns a failed apply into a success or back.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_gitops.commands import args
from mlops_gitops.commands.common import (
    EXIT_ERROR,
    EXIT_OK,
    err,
    open_project,
    out,
    print_warnings,
    runner_command,
    workspace_config,
)
from mlops_gitops.errors import ConfigError, GitOpsError
from mlops_gitops.textsafe import github_data


@dataclass
class GitHubRun:
    event: str
    payload: dict[str, Any]
    repository: str
    sha: str
    ref: str
    api_url: str
    run_url: str
    token: str | None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> GitHubRun:
        payload: dict[str, Any] = {}
        path = env.get("GITHUB_EVENT_PATH")
        if path and Path(path).is_file():
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return cls(event=env.get("GITHUB_EVENT_NAME", ""), payload=payload, repository=env.get("GITHUB_REPOSITORY", ""),
                   sha=env.get("GITHUB_SHA", ""), ref=env.get("GITHUB_REF", ""),
                   api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
                   run_url=f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env.get('GITHUB_RUN_ID', '')}",
                   token=env.get("MLOPS_GITOPS_GITHUB_TOKEN") or env.get("GITHUB_TOKEN"))

    @property
    def pull_request(self) -> dict[str, Any] | None:
        pr = self.payload.get("pull_request")
        return pr if isinstance(pr, dict) else None

    @property
    def head_sha(self) -> str:
        pr = self.pull_request
        return str(pr["head"]["sha"]) if pr else self.sha

    def default_command(self) -> str:
        if self.pull_request is not None:
            return "plan"
        if self.event == "schedule":
            return "drift"
        default_branch = (self.payload.get("repository") or {}).get("default_branch")
        if self.event == "push" and default_branch and self.ref == f"refs/heads/{default_branch}":
            return "apply"
        return "plan"


def _set_output(name: str, value: str) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return
    delimiter = f"mlops_{uuid.uuid4().hex}"
    with open(target, "a", encoding="utf-8") as f:
        f.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(markdown + "\n")


def _warn(message: str) -> None:
    runner_command(f"::warning title=mlops-gitops::{github_data(message)}")  # the exit code stays the real one


def ci(path: str = ".", workspace: str | None = None, command: str | None = None, train: bool = False) -> int:
    env = dict(os.environ)
    if env.get("GITHUB_ACTIONS") != "true":
        if env.get("TF_BUILD", "").lower() == "true":
            from mlops_gitops.commands.ci_azure import azure_ci

            return azure_ci(path, workspace, command)
        raise ConfigError("mlops-gitops ci runs inside GitHub Actions (GITHUB_ACTIONS=true) or Azure Pipelines "
                          "(TF_BUILD=True); elsewhere run validate, plan or apply directly")
    run = GitHubRun.from_env(env)
    chosen = command or run.default_command()
    project = open_project(path)
    name, _ = workspace_config(project, workspace)
    out(f"mlops-gitops ci: {run.event or 'manual'} event -> {chosen} on workspace '{name}'")
    if chosen in ("validate", "plan"):
        train = train or env.get("MLOPS_GITOPS_CI_TRAIN", "").lower() in ("1", "true", "yes")
        return _plan(run, path, workspace, name, plan=chosen == "plan", train=train)
    if chosen == "apply":
        return _apply(run, path, workspace, name)
    if chosen == "drift":
        return _drift(run, path, workspace, name)
    raise ConfigError(f"unknown ci command '{chosen}' (validate, plan, apply or drift)")


def _github(run: GitHubRun) -> Any:
    from mlops_gitops.integrations.github import GitHub

    return GitHub.connect(run.token, run.repository, run.api_url)


def _plan(run: GitHubRun, path: str, workspace: str | None, name: str, plan: bool, train: bool = False) -> int:
    from mlops_gitops.apply.planning import plan_read_only
    from mlops_gitops.commands.validate import validate
    from mlops_gitops.integrations.github import truncate
    from mlops_gitops.plan.render.documents import plan_documents
    from mlops_gitops.plan.render.markdown import MARKER

    # the workspace is consulted (the plan that follows reads it): a reference it lacks is an error here too
    code = validate([path], fmt="github", workspace=workspace)  # ::error lines: annotations
    body: str
    summary: str
    if code != EXIT_OK:
        summary = "Validation failed: see the annotations on the changed files."
        body = (f"{MARKER}\n### mlops-gitops: validation failed for workspace `{name}`\n\n{summary}\n\n"
                f"[Run log]({run.run_url})")
        state = "failure"
    elif not plan:
        summary, body, state = "Validation passed.", "", "success"
    else:
        try:
            planned = plan_read_only(open_project(path), workspace, None)
            print_warnings(planned.warnings, len(planned.tree.documents))
        except GitOpsError as exc:
            summary, state = f"Plan failed: {exc}", "failure"
            body = f"{MARKER}\n### mlops-gitops plan failed for workspace `{name}`\n\n```\n{exc}\n```"
            code = EXIT_ERROR
        else:
            summary = planned.plan.summary_line()
            temp = Path(os.environ.get("RUNNER_TEMP", "."))
            if train:
                code, summary = _train(planned, temp, summary)
            markdown, plan_file = plan_documents(planned.plan, temp)
            _summary(markdown)
            _set_output("plan-json", str(plan_file))
            _set_output("has-changes", "true" if planned.plan.has_changes else "false")
            body = truncate(markdown, pointer=f"The full plan is in the [job summary]({run.run_url}).")
            state = "success" if code == EXIT_OK else "failure"
    _set_output("summary", summary)
    out(summary)
    try:
        gh = _github(run)
        pr = run.pull_request
        if pr is not None and body:
            url, created = gh.upsert_comment(int(pr["number"]), body)
            out(f"{'Posted' if created else 'Updated'} the plan comment: {url}")
        gh.set_status(run.head_sha, state, summary, target_url=run.run_url, context=f"mlops-gitops/{name}")
    except GitOpsError as exc:
        _warn(str(exc))
    return code


def _train(planned: Any, temp: Path, summary: str) -> tuple[int, str]:
    """`--train`: the trainings the plan defers to, run in a scratch workspace for the comment's numbers."""
    from mlops_gitops.commands.ci_train import train_in_check

    try:
        trained = train_in_check(planned.project, planned, temp / "mlops-gitops-train")
    except GitOpsError as exc:
        err(f"Error: {exc}")
        planned.plan.notes.append(f"Training in this check failed: {exc}")
        return EXIT_ERROR, f"{summary} Training in this check failed."
    if trained:
        out(f"Trained {', '.join(trained)} in a scratch workspace: the comment shows that run's numbers")
    gated = [f"{r['deployment']}: {r['verdict']}" for r in planned.plan.releases
             if r.get("trained_in_check") and r["verdict"] not in ("passes", "no gate")]
    if gated:  # merging would keep the version in service: the check says so now
        err("Error: the release gate fails on this check's training: " + "; ".join(gated))
        return EXIT_ERROR, f"{summary} The release gate fails on this check's training."
    return EXIT_OK, summary


def _apply(run: GitHubRun, path: str, workspace: str | None, name: str) -> int:
    from mlops_gitops.commands.apply import apply

    try:
        code = apply(path, workspace, auto_approve=True)
        outcome = "applied" if code == EXIT_OK else "apply failed"
    except GitOpsError as exc:
        err(f"Error: {exc}")
        code, outcome = exc.exit_code or EXIT_ERROR, f"apply failed: {exc}"
    _set_output("summary", outcome)
    _summary(f"### mlops-gitops apply to `{name}`: {outcome}")
    try:
        _github(run).record_deployment(run.sha, name, "success" if code == EXIT_OK else "failure",
                                       f"mlops-gitops {outcome}", log_url=run.run_url)
    except GitOpsError as exc:
        _warn(str(exc))
    return code


def _drift(run: GitHubRun, path: str, workspace: str | None, name: str) -> int:
    from mlops_gitops.apply.planning import plan_read_only
    from mlops_gitops.commands.drift import drift_body

    planned = plan_read_only(open_project(path), workspace, False)
    drifted = bool(planned.plan.drift)
    _set_output("has-changes", "true" if drifted else "false")
    _set_output("summary", f"{len(planned.plan.drift)} resource(s) drifted" if drifted else "no drift")
    out(f"Workspace '{name}': " + (f"{len(planned.plan.drift)} resource(s) changed outside Git" if drifted
                                   else "matches the repository"))
    try:
        action, url = _github(run).drift_issue(drifted, f"Workspace '{name}' drifted from Git",
                                               drift_body(planned.plan, run.run_url))
        if action != "none":
            out(f"Drift issue {action}: {url}")
    except GitOpsError as exc:
        _warn(str(exc))
    _monitor_issues(run, path, workspace)
    return EXIT_OK


def _monitor_issues(run: GitHubRun, path: str, workspace: str | None) -> None:
    """An issue per monitor whose latest run breached (its report as the body), closed when one passes."""
    from mlops_gitops.backends.factory import workspace_backend

    with workspace_backend(open_project(path), workspace) as (_, backend):
        monitors = getattr(backend, "monitors", None)
        latest: dict[str, dict[str, Any]] = {}
        for r in monitors.all() if monitors is not None else []:  # newest first
            if r["status"] in ("breached", "passed"):
                latest.setdefault(r["schedule"], r)
        reports = {name: monitors.get(r["id"]) for name, r in latest.items()} if monitors is not None else {}
    for name, r in sorted(latest.items()):
        breached = r["status"] == "breached"
        report = Path(reports[name]["report"])
        body = report.read_text(encoding="utf-8") if report.is_file() else f"Run `{r['id']}` breached."
        body += f"\n\nSeen by the scheduled check: {run.run_url}\n" if run.run_url else ""
        try:
            action, url = _github(run).monitor_issue(name, breached, f"Monitor '{name}' breached", body)
            if action != "none":
                out(f"Monitor issue {action} ({name}): {url}")
        except GitOpsError as exc:
            _warn(str(exc))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", action="store_true",
                   help="on a pull request: run the pipelines whose next model version a deployment would serve, "
                        "in a scratch workspace, so the comment shows their metrics and the gate's verdict "
                        "(MLOPS_GITOPS_CI_TRAIN=true)")
    p.add_argument("--command", choices=["validate", "plan", "apply", "drift"],
                   help="what to do (default: from the event)")
    p.add_argument("path", nargs="?", default=".", help="repository (default: current folder)")
    args.workspace(p)
    args.examples(p, "mlops-gitops ci example-repo -w dev          # in a pull request, on main or on a schedule",
                  "mlops-gitops ci --command plan example-repo")
    p.set_defaults(run=ci)
