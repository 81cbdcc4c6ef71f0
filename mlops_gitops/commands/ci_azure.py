"""`mlops-gitops ci` in Azure Pipelines: logging commands for annotations and variables, the plan as one
thread on the Azure Repos pull request, apply on the default branch, drift on schedules.

Like the GitHub flow, the exit code is the real outcome; a failed thread post is a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops_gitops.commands.common import (
    EXIT_ERROR,
    EXIT_OK,
    open_project,
    out,
    print_warnings,
    runner_command,
    workspace_config,
)
from mlops_gitops.errors import ConfigError, GitOpsError
from mlops_gitops.integrations.azure import AzureRepos, setvariable
from mlops_gitops.textsafe import azure_data


def _warn(message: str) -> None:
    runner_command(f"##vso[task.logissue type=warning;]{azure_data(message)}")


def _command(env: dict[str, str]) -> str:
    reason = env.get("BUILD_REASON", "")
    if reason == "PullRequest":
        return "plan"
    if reason == "Schedule":
        return "drift"
    default = env.get("MLOPS_GITOPS_DEFAULT_BRANCH", "main")
    return "apply" if env.get("BUILD_SOURCEBRANCH") == f"refs/heads/{default}" else "plan"


def _run_url(env: dict[str, str]) -> str:
    return (f"{env.get('SYSTEM_COLLECTIONURI', '')}{env.get('SYSTEM_TEAMPROJECT', '')}/_build/results?"
            f"buildId={env.get('BUILD_BUILDID', '')}")


def _summary_file(markdown: str, env: dict[str, str]) -> None:
    """Attach the full plan to the run's summary page (task.uploadsummary)."""
    folder = Path(env.get("AGENT_TEMPDIRECTORY") or ".")
    target = folder / "mlops-gitops-plan.md"
    target.write_text(markdown, encoding="utf-8")
    runner_command(f"##vso[task.uploadsummary]{azure_data(str(target))}")


def azure_ci(path: str, workspace: str | None, command: str | None) -> int:
    env = dict(os.environ)
    chosen = command or _command(env)
    project = open_project(path)
    name, _ = workspace_config(project, workspace)
    out(f"mlops-gitops ci: Azure Pipelines ({env.get('BUILD_REASON') or 'manual'}) -> {chosen} on workspace '{name}'")
    if chosen in ("validate", "plan"):
        return _plan(env, path, workspace, name, chosen == "plan")
    if chosen == "apply":
        from mlops_gitops.commands.apply import apply

        try:
            code = apply(path, workspace, auto_approve=True)
        except GitOpsError as exc:
            runner_command(f"##vso[task.logissue type=error;]{azure_data(str(exc))}")
            code = EXIT_ERROR
        runner_command(setvariable("summary", "applied" if code == EXIT_OK else "apply failed"))
        return code
    if chosen == "drift":
        from mlops_gitops.apply.planning import plan_read_only

        drift = plan_read_only(open_project(path), workspace, False).plan.drift
        runner_command(setvariable("hasChanges", "true" if drift else "false"))
        for d in drift:
            _warn(f"{d.address} was {d.what} outside the repository by {d.changed_by} at {d.changed_at}")
        return EXIT_OK
    raise ConfigError(f"unknown ci command '{chosen}' (validate, plan, apply or drift)")


def _plan(env: dict[str, str], path: str, workspace: str | None, name: str, plan: bool) -> int:
    from mlops_gitops.apply.planning import plan_read_only
    from mlops_gitops.commands.validate import validate
    from mlops_gitops.plan.render.documents import plan_documents
    from mlops_gitops.plan.render.markdown import MARKER

    code = validate([path], fmt="azure", workspace=workspace)  # consults the workspace, as the plan will
    if code != EXIT_OK:
        summary = "Validation failed: see the issues logged on the files."
        body = f"{MARKER}\n### mlops-gitops: validation failed for workspace `{name}`\n\n[Run]({_run_url(env)})"
    elif not plan:
        summary, body = "Validation passed.", ""
    else:
        planned = plan_read_only(open_project(path), workspace, None)
        print_warnings(planned.warnings, len(planned.tree.documents))
        summary = planned.plan.summary_line()
        body, plan_file = plan_documents(planned.plan, Path(env.get("AGENT_TEMPDIRECTORY") or "."))
        _summary_file(body, env)
        runner_command(setvariable("planJson", str(plan_file)))
        runner_command(setvariable("hasChanges", "true" if planned.plan.has_changes else "false"))
    runner_command(setvariable("summary", summary))
    out(summary)
    pr = env.get("SYSTEM_PULLREQUEST_PULLREQUESTID")
    if pr and body:
        token = env.get("SYSTEM_ACCESSTOKEN")
        if not token:
            _warn("SYSTEM_ACCESSTOKEN is not mapped into the step's environment: the plan is not posted")
            return code
        repos = AzureRepos(env.get("SYSTEM_COLLECTIONURI", ""), env.get("SYSTEM_TEAMPROJECT", ""),
                           env.get("BUILD_REPOSITORY_ID", ""), token)
        try:
            thread, created = repos.upsert_thread(int(pr), body, MARKER)
            out(f"{'Started' if created else 'Updated'} pull-request thread {thread}")
        except GitOpsError as exc:
            _warn(str(exc))
    return code
