"""Azure Pipelines: logging commands, and the plan as one pull-request thread in Azure Repos (REST API).

Logging commands are lines on stdout the agent turns into annotations (`task.logissue`) and pipeline
variables (`task.setvariable`). The thread is found again by a hidden marker and its first comment is
edited, so every push updates one thread. The job's `System.AccessToken` authenticates; it never
appears in a message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_gitops.diagnostics import Diagnostic, Severity
from mlops_gitops.integrations.github import IntegrationError
from mlops_gitops.textsafe import azure_data

API_VERSION = "7.1"
COMMENT_LIMIT = 65_536  # plans are kept below 64 KiB here too; the run summary has the whole plan


def logissue(d: Diagnostic, root: Path) -> str:
    props = [f"type={'error' if d.severity is Severity.ERROR else 'warning'}"]
    if d.file:
        props.append(f"sourcepath={azure_data((root / d.file).as_posix())}")
    if d.line:
        props += [f"linenumber={d.line}", f"columnnumber={d.column}"]
    props.append(f"code={azure_data(d.code)}")
    return f"##vso[task.logissue {';'.join(props)};]{azure_data(d.message)}"


def as_azure(diags: Sequence[Diagnostic], root: Path) -> str:
    return "\n".join(logissue(d, root) for d in diags)


def setvariable(name: str, value: str, output: bool = True) -> str:
    flag = ";isOutput=true" if output else ""
    return f"##vso[task.setvariable variable={name}{flag}]{azure_data(value)}"


@dataclass
class AzureRepos:
    collection_uri: str  # https://dev.azure.com/ORG/ (System.CollectionUri)
    project: str
    repository_id: str
    token: str
    timeout_s: float = 20.0

    def _url(self, pr: int, tail: str = "") -> str:
        base = self.collection_uri.rstrip("/") + "/" + urllib.parse.quote(self.project)
        return (f"{base}/_apis/git/repositories/{urllib.parse.quote(self.repository_id)}/pullRequests/{pr}"
                f"/threads{tail}?api-version={API_VERSION}")

    def _call(self, method: str, url: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            hint = {401: "the System.AccessToken is missing or invalid (map it: env SYSTEM_ACCESSTOKEN)",
                    403: "the build service lacks 'Contribute to pull requests' on this repository"}.get(exc.code, "")
            raise IntegrationError(f"Azure Repos: {method} pull-request threads failed (HTTP {exc.code})"
                                   + (f" — {hint}" if hint else "")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise IntegrationError(f"Azure Repos: {method} pull-request threads failed: "
                                   f"{getattr(exc, 'reason', exc)}") from None
        return json.loads(text) if text else None

    def upsert_thread(self, pr: int, body: str, marker: str) -> tuple[int, bool]:
        """Edit the first comment of the thread that carries the marker, or start that thread."""
        from mlops_gitops.integrations.github import truncate

        content = truncate(body if marker in body else f"{marker}\n{body}", COMMENT_LIMIT,
                           "The full plan is in the pipeline run's summary.")
        threads = (self._call("GET", self._url(pr)) or {}).get("value") or []
        for thread in threads:
            first = (thread.get("comments") or [{}])[0]
            if marker in str(first.get("content") or ""):
                self._call("PATCH", self._url(pr, f"/{thread['id']}/comments/{first['id']}"), {"content": content})
                return int(thread["id"]), False
        created = self._call("POST", self._url(pr), {
            "comments": [{"parentCommentId": 0, "content": content, "commentType": 1}], "status": 1})
        return int(created["id"]), True
