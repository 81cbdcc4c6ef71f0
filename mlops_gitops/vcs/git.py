"""Git facts for provenance and history, through GitPython (always closed after use); repo_info, which every
plan and apply needs, asks git itself (four short commands) and spares the CLI GitPython's ~40 ms import."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    author: str | None = None
    message: str | None = None
    branch: str | None = None
    pr: str | None = None
    dirty_files: frozenset[str] = field(default_factory=frozenset)  # repo-root relative posix paths
    toplevel: Path | None = None

    def provenance(self) -> dict[str, Any]:
        return {"git.commit": self.commit, "git.author": self.author, "git.message": self.message,
                "git.branch": self.branch, "git.pr": self.pr}


_PR_IN_MESSAGE = re.compile(r"(?:Merge pull request #(\d+)|\(#(\d+)\)\s*$)", re.M)


def pull_request_from_env(message: str | None = None) -> str | None:
    """The pull request being built or merged, from CI variables or the merge commit's message."""
    names = ("MLOPS_GITOPS_PR", "SYSTEM_PULLREQUEST_PULLREQUESTID", "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")
    explicit = next((os.environ[n] for n in names if os.environ.get(n)), None)
    if explicit:
        return explicit
    ref = os.environ.get("GITHUB_REF", "")
    m = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", ref)
    if m:
        return m.group(1)
    event_path = os.environ.get("GITHUB_EVENT_PATH")
    if event_path and os.path.isfile(event_path):
        try:
            with open(event_path, encoding="utf-8") as f:
                event = json.load(f)
            number = (event.get("pull_request") or {}).get("number")
            if number:
                return str(number)
        except (OSError, ValueError):
            pass
    if message:
        m = _PR_IN_MESSAGE.search(message)
        if m:
            return m.group(1) or m.group(2)
    return None


def _git(cwd: Path, *args: str) -> str | None:
    """One git command's output; None when it fails (not a repository, no commits, git missing)."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})  # status may not take the index lock
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.decode("utf-8", errors="replace") if proc.returncode == 0 else None


def repo_info(path: Path) -> GitInfo:
    """HEAD commit, its author and message, and uncommitted files; empty when not in a Git repository."""
    where = path if path.is_dir() else path.parent
    top_text = _git(where, "rev-parse", "--show-toplevel")
    if top_text is None:
        return GitInfo(pr=pull_request_from_env())
    top = Path(top_text.strip())
    head = _git(top, "log", "-1", "--format=%H%x00%an%x00%ae%x00%B")
    if not head:  # no commits yet
        return GitInfo(toplevel=top, pr=pull_request_from_env())
    sha, author, email, message = [*head.split("\0", 3), "", "", ""][:4]
    status = _git(top, "status", "--porcelain", "-z", "--untracked-files=all") or ""
    dirty = frozenset(entry[3:] for entry in status.split("\0") if len(entry) > 3)
    branch = (_git(top, "symbolic-ref", "-q", "--short", "HEAD") or "").strip() or None  # None: detached
    message = message.strip()
    return GitInfo(commit=sha, author=f"{author} <{email}>", message=message, branch=branch,
                   pr=pull_request_from_env(message), dirty_files=dirty, toplevel=top)


@dataclass(frozen=True)
class FileCommit:
    commit: str
    author: str
    date: str
    subject: str


def file_history(paths: list[Path], limit: int = 50) -> list[FileCommit]:
    """Commits touching any of the paths, newest first (`--follow` renames when there is one path)."""
    import git

    if not paths:
        return []
    try:
        repo = git.Repo(paths[0].parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return []
    follow = ["--follow"] if len(paths) == 1 else []
    with repo:
        try:
            out = repo.git.log(*follow, f"-n{limit}", "--format=%H%x00%an <%ae>%x00%aI%x00%s", "--",
                               *[str(p) for p in paths])
        except git.GitCommandError:
            return []
    commits = []
    for line in out.splitlines():
        parts = line.split("\0")
        if len(parts) == 4:
            commits.append(FileCommit(*parts))
    return commits


MAX_DIFF_BYTES = 1 << 20


def uncommitted_diff(root: Path, paths: list[str]) -> str:
    """`git diff HEAD` of the given paths (relative to root), new untracked files listed; '' when clean."""
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return ""
    with repo:
        top = Path(repo.working_tree_dir or root)
        rels = [str((root / p).resolve().relative_to(top.resolve())) for p in paths] or ["."]
        try:
            diff = repo.git.diff("HEAD", "--", *rels)
            untracked = repo.git.ls_files("--others", "--exclude-standard", "--", *rels)
        except (git.GitCommandError, ValueError):
            return ""
    if untracked:
        diff += "".join(f"\n# untracked: {name}" for name in untracked.splitlines())
    return str(diff)[:MAX_DIFF_BYTES]


def resolve_revision(root: Path, rev: str) -> str | None:
    """The commit SHA a revision (HEAD, a branch, a tag, a short SHA, HEAD~1) names, or None."""
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return None
    with repo:
        try:
            return str(repo.commit(rev).hexsha)
        except (git.BadName, ValueError, git.GitCommandError):
            return None
