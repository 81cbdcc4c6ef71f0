"""Helpers shared by tests: real Git repositories in temporary folders, YAML writers, CLI runs."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "example-repo"
AZ = "https://azuremlschemas.azureedge.net/latest"
# mlops.yaml of a tree whose workspace `dev` runs jobs and deployments as local processes
PROCESS_WORKSPACE = "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
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


def every_kind_tree(root: Path) -> Path:
    """A tree with one file of every kind (test_kinds' minimal files; the endpoint with traffic)."""
    from tests.test_kinds import MINIMAL

    (root / "ctx").mkdir(parents=True)
    (root / "ctx" / "Dockerfile").write_text("FROM python\n")
    (root / "f.bin").write_bytes(b"weights")
    for name, (body, _, _) in MINIMAL.items():
        write(root / (f"{name}.yml" if name != "pipelineJob" else "x.yml"), f"$schema: {AZ}/{name}.schema.json\n{body}")
    write(root / "managedOnlineEndpoint.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: ep1\n"
                                              "traffic: {dep: 100}\n")
    return root


def built_once(tmp_path_factory: Any, name: str, build: Callable[[Path], None]) -> Path:
    """A folder `build` fills once per test run, shared by pytest-xdist's workers (each would otherwise build its
    own copy of a session fixture): the first worker builds it under a lock, the others wait for it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base
    folder = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".built").touch()
    return folder
