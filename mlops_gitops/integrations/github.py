"""GitHub through github3.py: the sticky plan comment, commit statuses, deployments, the drift issue and
the issues of breached monitors.

Works with github.com and GitHub Enterprise Server (`GITHUB_API_URL` ending in /api/v3). Every API
failure becomes an IntegrationError naming what failed and why (403: the token's permissions), with
the token never in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_gitops.errors import GitOpsError

PLAN_MARKER = "<!-- mlops-gitops plan -->"
DRIFT_MARKER = "<!-- mlops-gitops drift -->"
DRIFT_LABEL = "mlops-drift"
MONITOR_LABEL = "mlops-monitor"  # an issue per monitor whose latest run breached
COMMENT_LIMIT = 65536  # GitHub refuses issue comments longer than this many characters
STATUS_CONTEXT = "mlops-gitops/plan"


class IntegrationError(GitOpsError):
    exit_code = 1


def truncate(body: str, limit: int = COMMENT_LIMIT, pointer: str = "") -> str:
    """Cut a Markdown body below the limit on a line boundary, closing an open code fence, with a pointer."""
    if len(body) <= limit:
        return body
    note = f"\n\n… **truncated** ({len(body):,} characters; GitHub's limit is {limit:,}). {pointer}".rstrip()
    room = limit - len(note) - 16
    cut = body[:room].rsplit("\n", 1)[0]
    if cut.count("```") % 2:
        cut += "\n```"
    if cut.count("<details>") > cut.count("</details>"):
        cut += "\n</details>"
    return cut + note


def _explain(what: str, exc: Exception) -> IntegrationError:
    code = getattr(exc, "code", None)
    hint = {401: "the token is missing or invalid", 403: "the token lacks a permission this needs "
            "(pull-requests: write, statuses: write, deployments: write, issues: write)",
            404: "not found, or not visible to this token"}.get(code or 0, "")
    message = str(getattr(exc, "msg", "") or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return IntegrationError(f"GitHub: {what} failed" + (f" (HTTP {code})" if code else "") + f": {message}"
                            + (f" — {hint}" if hint else ""))


@dataclass
class GitHub:
    repo: Any  # github3 Repository

    @classmethod
    def connect(cls, token: str | None, repository: str, api_url: str = "https://api.github.com",
                timeout_s: float = 20.0) -> GitHub:
        import github3

        if not token:
            raise IntegrationError("GitHub: no token (set the action's github-token input or GITHUB_TOKEN)")
        owner, _, name = repository.partition("/")
        if not owner or not name:
            raise IntegrationError(f"GitHub: '{repository}' is not OWNER/REPO")
        api = api_url.rstrip("/")
        try:
            if api == "https://api.github.com":
                gh = github3.GitHub(token=token)
            else:  # GitHub Enterprise Server: https://HOST/api/v3
                gh = github3.GitHubEnterprise(api.removesuffix("/api/v3"), token=token)
            gh.session.default_read_timeout = timeout_s
            gh.session.default_connect_timeout = timeout_s
            repo = gh.repository(owner, name)
        except Exception as exc:  # github3 and requests exceptions
            raise _explain(f"reading repository {repository}", exc) from None
        if repo is None:
            raise IntegrationError(f"GitHub: repository {repository} not found, or not visible to this token")
        return cls(repo)

    def upsert_comment(self, number: int, body: str, marker: str = PLAN_MARKER) -> tuple[str, bool]:
        """Edit the comment that carries the marker, or create it; returns (URL, created)."""
        body = body if marker in body else f"{marker}\n{body}"
        try:
            issue = self.repo.issue(number)
            mine = next((c for c in issue.comments() if marker in (c.body or "")), None)
            if mine is not None:
                mine.edit(body)
                return str(mine.html_url), False
            created = issue.create_comment(body)
            return str(created.html_url), True
        except Exception as exc:
            raise _explain(f"posting the comment on #{number}", exc) from None

    def set_status(self, sha: str, state: str, description: str, target_url: str | None = None,
                   context: str = STATUS_CONTEXT) -> None:
        try:
            self.repo.create_status(sha, state, target_url=target_url, description=description[:140], context=context)
        except Exception as exc:
            raise _explain(f"setting the commit status of {sha[:12]}", exc) from None

    def record_deployment(self, sha: str, environment: str, state: str, description: str,
                          log_url: str | None = None) -> str:
        try:
            deployment = self.repo.create_deployment(sha, required_contexts=[], auto_merge=False,
                                                     environment=environment, description=description[:140])
            deployment.create_status(state, target_url=log_url, description=description[:140])
            return str(deployment.id)
        except Exception as exc:
            raise _explain(f"recording the deployment to {environment}", exc) from None

    def drift_issue(self, drifted: bool, title: str, body: str) -> tuple[str, str]:
        """Open or update the one drift issue while drifted; close it when not. Returns (action, URL)."""
        return self.tracking_issue(drifted, title, body, DRIFT_MARKER, DRIFT_LABEL,
                                   "The workspace matches the repository again.", "the drift issue")

    def monitor_issue(self, monitor: str, breached: bool, title: str, body: str) -> tuple[str, str]:
        """Open or update a monitor's issue while its latest run breached; close it once one passes."""
        return self.tracking_issue(breached, title, body, f"<!-- mlops-gitops monitor {monitor} -->", MONITOR_LABEL,
                                   "The monitor's latest run passed.", f"the issue of monitor {monitor}")

    def tracking_issue(self, wanted: bool, title: str, body: str, marker: str, label: str, closing: str,
                       what: str) -> tuple[str, str]:
        """The one open issue carrying `marker`: opened or updated while wanted, closed with a comment when not."""
        try:
            found = next((i for i in self.repo.issues(state="open", labels=label) if marker in (i.body or "")), None)
            if wanted:
                text = truncate(f"{marker}\n{body}")
                if found is None:
                    issue = self.repo.create_issue(title, text, labels=[label])
                    return "opened", str(issue.html_url)
                found.edit(title=title, body=text)
                return "updated", str(found.html_url)
            if found is not None:
                found.create_comment(closing)
                found.close()
                return "closed", str(found.html_url)
            return "none", ""
        except Exception as exc:
            raise _explain(f"updating {what}", exc) from None
