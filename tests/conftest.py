from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from mlops_gitops.cli import main
from tests.helpers import AZURITE, SCRIPTS, Result, copy_example, init_repo

# HYPOTHESIS_PROFILE=deep runs the fuzzers ten times longer (by hand, not in CI).
settings.register_profile("deep", max_examples=3000, deadline=None)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


REAL_HOME = Path.home()


def pytest_configure(config: pytest.Config) -> None:
    from tests.heartbeat import register

    register(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's work stealing, each worker starts with a slice of the collection, in order: put the slow
    tests at the head of every slice, a share each, so that they start at once on all workers instead of
    queueing on one (the long tail that made the run slow). The slices are cut as xdist cuts them."""
    workers = config.getoption("numprocesses", None) if config.pluginmanager.hasplugin("xdist") else None
    if not isinstance(workers, int) or workers < 2 or config.getoption("dist", "no") != "worksteal":
        return
    slow = [i for i in items if i.get_closest_marker("slow") is not None]
    rest = [i for i in items if i.get_closest_marker("slow") is None]
    ordered: list[pytest.Item] = []
    remaining = len(items)
    for w in range(workers):
        size = remaining // (workers - w)  # xdist: len(pending) // nodes_remaining, front first
        remaining -= size
        share = slow[w::workers][:size]
        ordered += share + [rest.pop(0) for _ in range(min(size - len(share), len(rest)))]
    ordered += rest + [i for i in slow if i not in ordered]
    items[:] = ordered


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No CI variables, no user Git config, a fixed actor: tests see the same world everywhere."""
    for var in list(os.environ):
        if var.startswith(("MLOPS_GITOPS_", "GITHUB_", "SYSTEM_PULLREQUEST", "BUILD_")):
            monkeypatch.delenv(var, raising=False)
    # one cache of fetched wheelhouses for the whole run (and its parallel workers)
    monkeypatch.setenv("MLOPS_GITOPS_CACHE", str(tmp_path_factory.getbasetemp().parent / "mlops-gitops-cache"))
    # the package caches of the real user: a fresh HOME per test must not mean downloading every wheel again
    monkeypatch.setenv("UV_CACHE_DIR", os.environ.get("UV_CACHE_DIR") or str(REAL_HOME / ".cache" / "uv"))
    monkeypatch.setenv("PIP_CACHE_DIR", os.environ.get("PIP_CACHE_DIR") or str(REAL_HOME / ".cache" / "pip"))
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada Lovelace")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Ada Lovelace")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@example.com")
    monkeypatch.setenv("MLOPS_GITOPS_ACTOR", "tester")
    monkeypatch.setenv("NO_COLOR", "1")
    # Plan/apply semantics are tested on recorded state; tests of serving opt in with runtime=process.
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "none")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test (the server of scripts/ensure-postgres.sh), dropped afterwards."""
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"mlops_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def azurite() -> str:
    """Azurite on 127.0.0.1:10000, installed and started by the project's script when it is not running."""
    subprocess.run(["bash", str(SCRIPTS / "ensure-azurite.sh")], check=True, timeout=300)
    return AZURITE


@pytest.fixture
def az_url(azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh container in Azurite (az://<container>/team), deleted afterwards."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    name = f"ws-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite)
    service.create_container(name)
    yield f"az://{name}/team"
    service.delete_container(name)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example repository, copied and committed into a fresh Git repository."""
    return init_repo(copy_example(tmp_path / "repo"), "Add the cancer classifier and its endpoints")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    def run(*argv: str, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A served tree's folder (tests/serving_helpers.served_tree), its endpoint host stopped afterwards."""
    from tests.serving_helpers import stop_host

    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    yield root
    stop_host(root / ".mlops" / "dev")
