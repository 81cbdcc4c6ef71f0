"""A workspace whose files live in object storage (Azurite's Blob service, moto's S3 server) and whose
metadata lives in PostgreSQL: what two CI runners with empty folders share."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_gitops.backends.local import LocalBackend
from tests.helpers import AZURITE, Result, commit_all, git, write

Cli = Callable[..., Result]
EXCLUDE = '[".github/**", "src/**", "**/conda*.yml", "azure-pipelines.yml"]'

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(key, value)
    name = f"ws-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}/team"


@pytest.fixture(params=["az", "s3"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def shared(repo: Path, database: str, artifacts: str) -> Path:
    write(repo / "mlops.yaml", f"""
        workspaces:
          dev: {{backend: local, path: .mlops/dev, database: "{database}", artifacts: "{artifacts}"}}
        default_workspace: dev
        exclude: {EXCLUDE}
    """)
    commit_all(repo, "Share the workspace")
    return repo


def runner(origin: Path, where: Path) -> Path:
    """A fresh checkout, as a hosted CI runner starts: the repository and nothing else."""
    git(where.parent, "clone", "-q", str(origin), str(where))
    return where


def backend(repo: Path, database: str, artifacts: str) -> LocalBackend:
    return LocalBackend(repo / ".mlops" / "dev", database, artifacts=artifacts)


def objects(url: str) -> dict[str, Any]:
    """Every stored object of the workspace with its ETag: a file written again gets a new one."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, use_listings_cache=False)
    return {str(k): info.get("etag") or info.get("ETag") or info.get("last_modified")
            for k, info in fs.find(root, detail=True).items()}


def test_two_runners_share_one_workspace(cli: Cli, example: Path, tmp_path: Path, pg_url: str,
                                         store_url: str) -> None:
    origin = shared(example, pg_url, store_url)
    first = runner(origin, tmp_path / "runner-1")
    res = cli("apply", str(first), "--auto-approve")
    assert res.code == 0, res.err
    snap = backend(first, pg_url, store_url).read()
    referenced = {f.sha256 for r in snap.resources.values() for f in r.files}
    assert referenced and set(backend(first, pg_url, store_url).store.artifacts.all()) == referenced
    assert not (first / ".mlops" / "dev" / "artifacts").exists()  # the folder holds a cache, not the files
    before = objects(store_url)
    assert any(k.endswith("/workspace.json") for k in before)

    # A second runner, with an empty folder, sees what the first left and reads its files.
    second = runner(origin, tmp_path / "runner-2")
    res = cli("plan", str(second))
    assert res.code == 0 and "No changes." in res.out, res.out + res.err
    res = cli("model", "download", "cancer-onnx:1", "--dir", str(tmp_path / "dl"), "-C", str(second))
    assert res.code == 0, res.err
    got = next((tmp_path / "dl").rglob("model.onnx"))
    assert got.read_bytes() == (example / "models" / "cancer-onnx" / "model.onnx").read_bytes()

    # A change from the second runner uploads only the new file; nothing stored is written again.
    (second / "models" / "cancer-onnx" / "labels.json").write_text('["benign", "malignant", "unknown"]\n')
    commit_all(second, "Relabel")
    res = cli("apply", str(second), "--auto-approve")
    assert res.code == 0, res.err
    after = objects(store_url)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(set(after) - set(before)) == 1
    assert "model:cancer-onnx:2" in {str(a) for a in backend(first, pg_url, store_url).read().resources}


def test_unusable_store_is_an_error_naming_the_setting(cli: Cli, example: Path, pg_url: str, azurite: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "az://no-such-container/team": (AZURITE, "does not exist"),
        "az://anything/team": (AZURITE.replace("Eby8", "AAAA"), "cannot reach the container"),
        "ftp://host/team": (AZURITE, "is not an object store URL"),
    }
    for url, (connection, message) in cases.items():
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        shared(example, pg_url, url)
        res = cli("apply", str(example), "--auto-approve")
        assert res.code == 1, (url, res.out)
        assert "mlops.yaml:2:" in res.err and "artifacts" in res.err and message in res.err, res.err
        assert "Traceback" not in res.err and "AccountKey" not in res.err
        # nothing was written: the database holds no workspace yet
        assert LocalBackend(example / ".mlops" / "dev", pg_url).read().workspace_id is None


@pytest.mark.slow
def test_apply_killed_while_uploading_leaves_no_version_without_its_file(example: Path, pg_url: str,
                                                                         az_url: str) -> None:
    repo = shared(example, pg_url, az_url)

    def apply(failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "MLOPS_GITOPS_FAILPOINT"}
        if failpoint:
            env["MLOPS_GITOPS_FAILPOINT"] = failpoint
        return subprocess.run([sys.executable, "-m", "mlops_gitops", "apply", str(repo), "--auto-approve"],
                              env=env, capture_output=True, text=True, timeout=120)

    killed = apply("artifact-stored:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    snap = backend(repo, pg_url, az_url).read()
    stored = set(backend(repo, pg_url, az_url).store.artifacts.all())
    assert {f.sha256 for r in snap.resources.values() for f in r.files} <= stored
    shutil.rmtree(repo / ".mlops")  # the rerun may even come from another runner: the cache is not needed
    rerun = apply()
    assert rerun.returncode == 0, rerun.stderr
    snap = backend(repo, pg_url, az_url).read()
    referenced = {f.sha256 for r in snap.resources.values() for f in r.files}
    assert set(backend(repo, pg_url, az_url).store.artifacts.all()) == referenced  # no orphan left either
    assert "Nothing to do" in apply().stdout


def test_a_plan_of_a_shared_workspace_reads_postgresql_alone(cli: Cli, example: Path, pg_url: str,
                                                            az_url: str) -> None:
    """A no-change plan reads the metadata through psycopg: neither SQLAlchemy nor the object store's SDK is
    loaded (they cost more than the plan), and what it reads is what the store reads."""
    from mlops_gitops.backends.local.quickread import read_postgres

    repo = shared(example, pg_url, az_url)
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    quick = read_postgres(pg_url)
    full = backend(repo, pg_url, az_url).read()
    assert quick is not None and quick.workspace_id == full.workspace_id and quick.serial == full.serial
    assert {a: (r.spec_hash, r.files) for a, r in quick.resources.items()} == \
        {a: (r.spec_hash, r.files) for a, r in full.resources.items()}
    assert quick.job_outputs.keys() == full.job_outputs.keys()
    # without the pipeline, whose steps a plan previews through the backend (SQLAlchemy, by design)
    (repo / "pipelines" / "train.yml").unlink()
    (repo / "models" / "cancer-trained.yml").unlink()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops_gitops", "plan", "--detailed-exitcode"],
                          cwd=repo, env=dict(os.environ), capture_output=True, text=True, check=False)
    assert done.returncode in (0, 2), done.stdout + done.stderr  # 2: the removals kept (no --prune)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "psycopg" in imported
    assert not imported & {"sqlalchemy", "adlfs", "azure.storage.blob"}, imported & {"sqlalchemy", "adlfs",
                                                                                     "azure.storage.blob"}
