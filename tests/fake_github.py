"""A small GitHub REST API on 127.0.0.1 for the endpoints mlops-gitops uses; it records every request.

Documents carry the fields github3.py reads, with URLs pointing back at this server (github3 follows
them). Behaviour can be bent per test: `fail` maps "METHOD path-prefix" to an HTTP status to answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import json_server

TOKEN = "ghs_fake-token-0123456789"
STAMP = "2026-11-25T00:00:00Z"


@dataclass
class Request:
    method: str
    path: str
    body: Any
    auth: str | None


@dataclass
class FakeGitHub:
    owner: str = "acme"
    name: str = "ml"
    requests: list[Request] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {issue, body}
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> {title, body, state, labels}
    statuses: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = iter(range(100, 10**6))
        self.issues[7] = {"title": "Add green", "body": "", "state": "open", "labels": [], "pull": True}
        self.server, self.base = json_server(
            self.route, lambda method, path, body, auth: self.requests.append(Request(method, path, body, auth)))
        self.api = f"{self.base}/api/v3"

    def close(self) -> None:
        self.server.shutdown()

    # -- documents --------------------------------------------------------------------------------

    @property
    def repo_url(self) -> str:
        return f"{self.api}/repos/{self.owner}/{self.name}"

    def user(self, login: str = "github-actions[bot]") -> dict[str, Any]:
        keys = ["avatar_url", "events_url", "followers_url", "following_url", "gists_url", "html_url",
                "organizations_url", "received_events_url", "repos_url", "starred_url", "subscriptions_url", "url"]
        return {**{k: f"{self.api}/users/{login}" for k in keys}, "login": login, "id": 1, "gravatar_id": "",
                "type": "Bot"}

    def repository(self) -> dict[str, Any]:
        urls = ["archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url", "comments_url",
                "commits_url", "compare_url", "contents_url", "contributors_url", "deployments_url", "downloads_url",
                "events_url", "forks_url", "git_commits_url", "git_refs_url", "git_tags_url", "hooks_url",
                "issue_comment_url", "issue_events_url", "issues_url", "keys_url", "labels_url", "languages_url",
                "merges_url", "milestones_url", "notifications_url", "pulls_url", "releases_url", "stargazers_url",
                "statuses_url", "subscribers_url", "subscription_url", "tags_url", "teams_url", "trees_url"]
        doc: dict[str, Any] = {k: f"{self.repo_url}/{k}" for k in urls}
        doc.update(url=self.repo_url, html_url=f"{self.base}/{self.owner}/{self.name}", clone_url="", git_url="",
                   ssh_url="", svn_url="", mirror_url=None, homepage="", id=1, name=self.name,
                   full_name=f"{self.owner}/{self.name}", owner=self.user(self.owner), private=True, fork=False,
                   archived=False, description="", default_branch="main", language="Python", created_at=STAMP,
                   updated_at=STAMP, pushed_at=STAMP, size=1, forks_count=0, stargazers_count=0, watchers_count=0,
                   open_issues_count=0, subscribers_count=0, network_count=0, has_downloads=False, has_issues=True,
                   has_pages=False, has_projects=False, has_wiki=False)
        return doc

    def issue(self, number: int) -> dict[str, Any]:
        i = self.issues[number]
        url = f"{self.repo_url}/issues/{number}"
        return {"url": url, "html_url": f"{self.base}/{self.owner}/{self.name}/issues/{number}", "id": number,
                "number": number, "title": i["title"], "body": i["body"], "body_html": "", "body_text": "",
                "state": i["state"],
                "labels": [{"name": n, "url": f"{self.repo_url}/labels/{n}", "color": "ededed", "id": 1,
                            "description": "", "default": False} for n in i["labels"]],
                "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments",
                "events_url": f"{url}/events",
                "comments": sum(1 for c in self.comments.values() if c["issue"] == number), "assignee": None,
                "assignees": [], "milestone": None, "locked": False, "closed_at": None, "closed_by": None,
                "created_at": STAMP, "updated_at": STAMP, "user": self.user()}

    def comment(self, cid: int) -> dict[str, Any]:
        c = self.comments[cid]
        return {"url": f"{self.repo_url}/issues/comments/{cid}", "id": cid, "body": c["body"], "body_html": "",
                "body_text": "", "html_url": f"{self.base}/{self.owner}/{self.name}/issues/{c['issue']}#c{cid}",
                "issue_url": f"{self.repo_url}/issues/{c['issue']}", "author_association": "NONE",
                "created_at": STAMP, "updated_at": STAMP, "user": self.user()}

    # -- routing ----------------------------------------------------------------------------------

    def route(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any]:  # noqa: C901 - a router
        if auth != f"token {TOKEN}":
            return 401, {"message": "Bad credentials"}
        bare = path.split("?", 1)[0].removeprefix("/api/v3")
        for key, status in self.fail.items():
            verb, _, prefix = key.partition(" ")
            if verb == method and bare.startswith(prefix):
                return status, {"message": "Resource not accessible by integration"}
        repo = f"/repos/{self.owner}/{self.name}"
        if bare == repo and method == "GET":
            return 200, self.repository()
        m = re.fullmatch(rf"{repo}/issues/(\d+)(/comments)?", bare)
        if m and int(m.group(1)) in self.issues:
            number = int(m.group(1))
            if m.group(2) and method == "GET":
                return 200, [self.comment(c) for c, v in self.comments.items() if v["issue"] == number]
            if m.group(2) and method == "POST":
                cid = next(self._ids)
                self.comments[cid] = {"issue": number, "body": body["body"]}
                return 201, self.comment(cid)
            if method == "PATCH":
                self.issues[number].update({k: v for k, v in body.items() if k in ("title", "body", "state")})
                return 200, self.issue(number)
            return 200, self.issue(number)
        m = re.fullmatch(rf"{repo}/issues/comments/(\d+)", bare)
        if m and method == "PATCH":
            self.comments[int(m.group(1))]["body"] = body["body"]
            return 200, self.comment(int(m.group(1)))
        if bare == f"{repo}/issues" and method == "GET":
            query = path.partition("?")[2]
            wanted = {"labels": None, "state": "open"}
            for part in query.split("&"):
                k, _, v = part.partition("=")
                if k in wanted:
                    wanted[k] = v
            return 200, [self.issue(n) for n, i in self.issues.items() if not i.get("pull")
                         and i["state"] == wanted["state"]
                         and (not wanted["labels"] or wanted["labels"] in i["labels"])]
        if bare == f"{repo}/issues" and method == "POST":
            number = next(self._ids)
            self.issues[number] = {"title": body["title"], "body": body.get("body", ""), "state": "open",
                                   "labels": body.get("labels", [])}
            return 201, self.issue(number)
        m = re.fullmatch(rf"{repo}/statuses/(\w+)", bare)
        if m and method == "POST":
            self.statuses.append({"sha": m.group(1), **body})
            return 201, {"url": "", "id": len(self.statuses), "created_at": STAMP, "updated_at": STAMP,
                         "creator": self.user(), **{k: body.get(k) for k in ("state", "description", "context",
                                                                               "target_url")}}
        if bare == f"{repo}/deployments" and method == "POST":
            did = next(self._ids)
            self.deployments.append({"id": did, **body})
            url = f"{self.repo_url}/deployments/{did}"
            return 201, {"url": url, "id": did, "sha": body["ref"], "ref": body["ref"], "payload": {},
                         "environment": body.get("environment"), "description": body.get("description"),
                         "statuses_url": f"{url}/statuses", "created_at": STAMP, "updated_at": STAMP,
                         "creator": self.user()}
        m = re.fullmatch(rf"{repo}/deployments/(\d+)/statuses", bare)
        if m and method == "POST":
            self.deployment_statuses.append({"deployment": int(m.group(1)), **body})
            return 201, {"url": "", "id": 1, "state": body["state"], "description": body.get("description"),
                         "target_url": body.get("target_url"), "deployment_url": "", "created_at": STAMP,
                         "updated_at": STAMP, "creator": self.user()}
        return 404, {"message": f"Not Found: {method} {bare}"}
