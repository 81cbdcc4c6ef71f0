"""A long `job run` does not block deploys: the lock is held only at its start and end, and garbage
collection keeps what the running run reads and writes (leases) until it ends."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_gitops.addresses import Kind
from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.commands.apply import apply
from mlops_gitops.commands.jobs import describe_run, job_run
from tests.helpers import commit_all
from tests.pipeline_helpers import pipeline_tree
from tests.serving_helpers import SAMPLE, Host, served_tree, stop_host

pytestmark = pytest.mark.slow


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    served_tree(root, {"blue": 100, "green": 0})
    go = tmp_path / "go"
    go.write_text("")  # the first apply runs the pipeline through without waiting
    pipeline_tree(root, tmp_path / "count.txt", wait_for=str(go))
    monkeypatch.chdir(root)
    yield root
    stop_host(root / ".mlops" / "dev")


def running_step(backend: LocalBackend, timeout: float = 60) -> str:
    """The ID of the run whose step `a` is running now (read from the store: the run's thread shares stdout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with backend.store.engine.connect() as conn:
            rows = list(conn.exec_driver_sql(
                "SELECT run_id FROM mg_run_steps WHERE step = 'a' AND status = 'running'"))
        if rows:
            return str(rows[0][0])
        time.sleep(0.05)
    raise AssertionError("step a never started")


def test_an_apply_changes_traffic_and_collects_garbage_while_a_run_is_in_progress(root: Path, tmp_path: Path) -> None:
    assert apply(str(root), auto_approve=True) == 0
    backend = LocalBackend(root / ".mlops" / "dev")
    rows = backend.read().latest(Kind.DATA, "rows")
    assert rows is not None
    rows_blob = backend.artifact_path(rows.files[0].sha256)
    assert rows_blob.is_file()

    go = tmp_path / "go"
    go.unlink()  # step a of the next run waits for it, then reads the data asset's stored file
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(
        job_run("pipelines/p.yml", str(root), force_rerun=True, parallelism=1)))
    thread.start()
    try:
        run_id = running_step(backend)
        assert backend.lock_holder() is None, "a running job does not hold the workspace lock"

        # a traffic hotfix, and the data asset and the pipeline pruned from the tree, while the run goes on
        endpoint = root / "endpoints" / "cancer.yml"
        endpoint.write_text(endpoint.read_text().replace("blue: 100", "blue: 0").replace("green: 0", "green: 100"))
        (root / "data" / "rows.yml").unlink()
        (root / "pipelines" / "p.yml").unlink()
        commit_all(root, "Hotfix: all traffic to green; drop the rows asset")
        assert apply(str(root), auto_approve=True, prune=True) == 0
        host = Host(root / ".mlops" / "dev")
        assert {host.score(SAMPLE).headers["azureml-model-deployment"] for _ in range(20)} == {"green"}
        assert backend.read().latest(Kind.DATA, "rows") is None
        assert rows.files[0].sha256 in backend.runs.records.leases(run_id), "the running run's input is leased"
    finally:
        go.write_text("")
        thread.join(120)
    assert result == [0]
    info = describe_run(backend.runs, run_id)
    assert info["status"] == "completed", info
    a_out = backend.runs.records.steps(run_id)
    assert {s.step: s.status for s in a_out}["a"] == "completed"
    assert backend.runs.records.leases(run_id) == set(), "the run's end released its leases"

    # what the run read (an archived version now) and wrote are still there after the next apply's collection
    assert apply(str(root), auto_approve=True, prune=True) == 0
    assert rows_blob.is_file()
    outputs = [sha for step in a_out for rec in step.outputs.values() for _, sha, _ in rec["files"]]
    assert outputs and all(backend.artifact_path(sha).is_file() for sha in outputs)


def test_outputs_being_stored_by_a_running_run_survive_garbage_collection(root: Path, tmp_path: Path) -> None:
    """A step's outputs are recorded as blobs before they are copied and referenced by its record only when
    the step ends: in between, an apply's garbage collection must not take them (the run's lease keeps them)."""
    from mlops_gitops.backends.local.environments import EnvResolver
    from mlops_gitops.backends.local.pipelines import LocalRunStore
    from mlops_gitops.runtime.pipelines.steps import Step

    assert apply(str(root), auto_approve=True) == 0
    backend = LocalBackend(root / ".mlops" / "dev")
    records = backend.runs.records
    records.start("long-run", "demo", "pipelines/p.yml", None, {}, [{"step": "train"}])
    out = tmp_path / "out"
    out.mkdir()
    (out / "weights.bin").write_bytes(b"trained for two hours")
    run_store = LocalRunStore(backend.store, records, EnvResolver(backend.store, backend.hooks), "long-run")
    stored = run_store.store_outputs(Step("train", "true", outputs={"model": "uri_folder"}), {"model": out})
    blob = stored["model"][1][0].source
    assert blob.is_file()
    with backend.lock("apply"):
        backend.collect_garbage()
    assert blob.is_file(), "the running run's output is leased"
    records.finish("long-run", "failed", {}, "it never recorded the output")
    with backend.lock("apply"):
        assert backend.collect_garbage() >= 1
    assert not blob.exists(), "once the run ended without referencing it, the file is garbage"


def test_a_run_whose_process_is_gone_releases_its_leases(root: Path) -> None:
    backend = LocalBackend(root / ".mlops" / "dev")
    assert apply(str(root), auto_approve=True) == 0
    records = backend.runs.records
    records.start("ghost-run", "demo", "pipelines/p.yml", None, {}, [], leases={"0" * 64})
    with backend.store.engine.begin() as conn:  # a process of this host that no longer exists ran it
        conn.exec_driver_sql(f"UPDATE mg_runs SET owner = '{socket.gethostname()}:999999999:', pid = 999999999 "
                             "WHERE id = 'ghost-run'")
    assert records.leases("ghost-run") == {"0" * 64}
    with backend.lock("test"):  # taking the lock reaps runs whose process is gone
        pass
    assert backend.runs.get("ghost-run").status == "interrupted"
    assert records.leases("ghost-run") == set()
