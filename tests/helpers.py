"""Helpers shared by tests: real Git repositories in temporary folders, YAML writers, CLI runs."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "example-repo"
AZ = "https://azuremlschemas.azureedge.net/latest"
SCRIPTS = REPO_ROOT / "scripts"
# Azurite's documented development account: a well-known public key, not a secret.
AZURITE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
           "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
           "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def init_repo(path: Path, message: str = "Initial commit", author: str = "Ada Lovelace <ada@example.com>") -> Path:
    git(path, "init", "-q", "-b", "main")
    commit_all(path, message, author)
    return path


def commit_all(repo: Path, message: str, author: str = "Ada Lovelace <ada@example.com>") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message, f"--author={author}")
    return git(repo, "rev-parse", "HEAD")


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".mlops"))
    return dest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@dataclass
class Result:
    code: int
    out: str
    err: str
