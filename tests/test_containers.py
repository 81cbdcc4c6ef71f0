"""Packaging deployments as images and the container runtime, against a real engine (Podman's Docker API).

scripts/ensure-podman.sh installs and starts the engine and builds the base image once (cached).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx
import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.commands.apply import apply
from mlops_gitops.runtime.containers import LABEL
from tests.helpers import REPO_ROOT, Result, copy_example, write
from tests.serving_helpers import SAMPLE, Host, served_tree, stop_host

pytestmark = [pytest.mark.slow, pytest.mark.container]
Cli = Callable[..., Result]


@pytest.fixture(scope="session")
def docker_host() -> str:
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "ensure-podman.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, f"scripts/ensure-podman.sh failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1].partition("=")[2]


@pytest.fixture
def engine(docker_host: str, monkeypatch: pytest.MonkeyPatch) -> docker.DockerClient:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    return docker.DockerClient(base_url=docker_host)


def containers_of(client: docker.DockerClient, workspace: Path) -> dict[str, str]:
    """deployment -> status of the containers the workspace's host runs."""
    from mlops_gitops.runtime.serving.container_runner import workspace_label

    found = client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in
                                                                 workspace_label(workspace.resolve()).items()]})
    return {c.labels[f"{LABEL}.deployment"]: c.status for c in found}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def container_repo(engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "container")
    root = tmp_path / "repo"
    yield root
    stop_host(root / ".mlops" / "dev", "container")


def test_deployments_run_as_containers_with_rollout_crash_restart_and_removal(
        container_repo: Path, engine: docker.DockerClient) -> None:
    root = served_tree(container_repo, {"blue": 100}, green="script")
    assert apply(str(root), auto_approve=True) == 0
    ws = root / ".mlops" / "dev"
    host = Host(ws)
    assert containers_of(engine, ws) == {"blue": "running", "green": "running"}
    status = host.status()["deployments"]
    assert status["cancer/blue"]["kind"] == status["cancer/green"]["kind"] == "container"

    # the same routes as the process runtime, answered by the containers behind the host
    res = host.score(SAMPLE)
    assert res.status_code == 200 and res.json()["label"] == [0, 1]
    assert res.headers["azureml-model-deployment"] == "blue"
    assert host.score(SAMPLE, key="wrong").status_code == 401
    script = host.score(SAMPLE, deployment="green")
    assert script.status_code == 200 and script.json()["rows"] == 2
    raised = host.score({"raise": True}, deployment="green")
    assert raised.status_code == 500 and "asked to raise" in raised.json()["error"]
    assert host.client.get("/v2/models/cancer", headers=host.auth()).json()["inputs"][0]["shape"] == [-1, 30]
    bad = host.score(None, raw=b"{not json")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]

    # a container that dies is restarted; the exit is in the deployment's log
    blue = next(c for c in engine.containers.list() if c.labels.get(f"{LABEL}.deployment") == "blue"
                and c.labels.get(f"{LABEL}.workspace"))
    blue.kill()
    first = host.score(SAMPLE)
    assert first.status_code in (200, 502)
    wait_for(lambda: host.score(SAMPLE).status_code == 200)
    assert "the container exited" in (ws / "logs" / "cancer" / "blue.log").read_text()

    # traffic moves in YAML; the removed deployment's container goes once its traffic is zero
    write(root / "endpoints" / "cancer.yml", (root / "endpoints" / "cancer.yml").read_text()
          .replace("blue: 100", "green: 100"))
    (root / "deployments" / "blue.yml").unlink()
    assert apply(str(root), auto_approve=True, prune=True) == 0
    assert host.score(SAMPLE).headers["azureml-model-deployment"] == "green"
    assert containers_of(engine, ws) == {"green": "running"}

    stop_host(ws, "container")
    assert containers_of(engine, ws) == {}


def test_the_example_scoring_script_runs_unchanged_in_its_environment_image(
        engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = copy_example(tmp_path / "repo")
    # the serving side only: the training pipeline's container steps are test_container_jobs' subject
    shutil.rmtree(root / "pipelines")
    (root / "models" / "cancer-trained.yml").unlink()
    ws = root / ".mlops" / "containers"
    monkeypatch.delenv("MLOPS_GITOPS_RUNTIME")
    try:
        assert apply(str(root), workspace="containers", auto_approve=True) == 0
        host = Host(ws)
        green = host.score(SAMPLE, deployment="green")  # joblib + scikit-learn from the conda file's pip list
        assert green.status_code == 200 and green.json() == [0, 1]
        assert host.score(SAMPLE, deployment="blue").json()["label"] == [0, 1]
    finally:
        stop_host(ws, "container")


def run_image(client: docker.DockerClient, image: str, keys: str) -> tuple[object, httpx.Client]:
    port = free_port()
    container = client.containers.run(image, command=["--port", str(port)], detach=True, network_mode="host",
                                      environment={"MLOPS_GITOPS_ENDPOINT_KEYS": keys,
                                                   "MLOPS_GITOPS_METRICS_KEY": "scrape"})
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def ready() -> bool:
        try:
            return http.get("/v2/health/ready").status_code == 200
        except httpx.TransportError:
            container.reload()
            assert container.status in ("created", "running"), container.logs().decode()[-2000:]
            return False

    wait_for(ready)
    return container, http


def test_package_builds_an_image_that_serves_the_same_routes(
        engine: docker.DockerClient, cli: Cli, tmp_path: Path) -> None:
    root = served_tree(tmp_path / "repo", {"blue": 90, "green": 10}, green="script")
    assert apply(str(root), auto_approve=True) == 0  # runtime none: recorded only; packaging needs no host
    for dep in ("blue", "green"):
        result = cli("package", f"cancer/{dep}", "--tag", f"mlops-gitops-test/{dep}:1", cwd=root)
        assert result.code == 0, result.err
        assert f"Built mlops-gitops-test/{dep}:1 for cancer/{dep}" in result.out
    labels = engine.images.get("mlops-gitops-test/blue:1").labels
    assert labels[f"{LABEL}.model"] == "cancer-onnx:1" and labels[f"{LABEL}.deployment"] == "blue"

    container, http = run_image(engine, "mlops-gitops-test/blue:1", "k1,k2")
    try:
        auth = {"authorization": "Bearer k2"}
        res = http.post("/endpoints/cancer/score", json=SAMPLE, headers=auth)
        assert res.status_code == 200 and res.json()["label"] == [0, 1]
        assert http.post("/endpoints/cancer/score", json=SAMPLE).status_code == 401
        v2 = http.post("/v2/models/cancer/infer", headers=auth, json={"inputs": [
            {"name": "X", "shape": [2, 30], "datatype": "FP32", "data": [v for r in SAMPLE["data"] for v in r]}]})
        assert {o["name"]: o["data"] for o in v2.json()["outputs"]}["label"] == [0, 1]
        assert http.get("/v2/models/cancer").status_code == 401
        assert http.get("/v2/models/cancer", headers=auth).json()["inputs"] == [
            {"name": "X", "datatype": "FP32", "shape": [-1, 30]}]
        assert http.get("/metrics").status_code == 401
        metrics = http.get("/metrics", headers={"authorization": "Bearer scrape"}).text
        assert 'mlops_requests_total{code="200",deployment="blue",endpoint="cancer"} 2.0' in metrics
    finally:
        container.remove(force=True)  # type: ignore[attr-defined]

    container, http = run_image(engine, "mlops-gitops-test/green:1", "k")
    try:
        res = http.post("/endpoints/cancer/score", json=SAMPLE, headers={"authorization": "Bearer k"})
        assert res.status_code == 200 and res.json()["rows"] == 2
        assert "scored 2" in container.logs().decode()  # type: ignore[attr-defined]
    finally:
        container.remove(force=True)  # type: ignore[attr-defined]


def test_package_output_writes_the_build_context_without_an_engine(cli: Cli, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    root = served_tree(tmp_path / "repo", {"blue": 100}, green="script")
    assert apply(str(root), auto_approve=True) == 0
    result = cli("package", "cancer/green", "-o", str(tmp_path / "ctx"), cwd=root)
    assert result.code == 0, result.err
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert "FROM mlops-gitops-base:bookworm" in dockerfile
    assert 'COPY ["code/", "/var/azureml-app/code/"]' in dockerfile
    served = json.loads((tmp_path / "ctx" / "serving.json").read_text())
    dep = served["deployments"]["cancer/green"]
    assert dep["code_dir"] == "/var/azureml-app/code" and dep["scoring_script"] == "score.py"
    assert (tmp_path / "ctx" / "code" / "score.py").read_text() == (root / "src" / "score.py").read_text()
    assert (tmp_path / "ctx" / "lib" / "mlops_gitops" / "runtime" / "serving" / "host.py").exists()
    assert served["endpoints"]["cancer"]["keys"] == [], "no key is baked into an image"


def test_without_an_engine_package_and_container_runtime_fail_clearly_and_process_still_serves(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    root = served_tree(tmp_path / "repo", {"blue": 100})
    assert apply(str(root), auto_approve=True) == 0
    result = cli("package", "cancer/blue", cwd=root)
    assert result.code == 1 and "no container engine reachable" in result.err and "Traceback" not in result.err

    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "container")
    fresh = served_tree(tmp_path / "other", {"blue": 100})
    failed = cli("apply", "--auto-approve", cwd=fresh)
    assert failed.code == 1 and "no container engine reachable" in failed.err
    ws = fresh / ".mlops" / "dev"
    try:
        assert LocalBackend(ws).get(Address(Kind.TRAFFIC, "cancer")) is None, "no traffic to a failed deployment"
    finally:
        stop_host(ws, "container")

    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    proc = served_tree(tmp_path / "process", {"blue": 100})
    try:
        assert apply(str(proc), auto_approve=True) == 0
        assert Host(proc / ".mlops" / "dev").score(SAMPLE).status_code == 200
    finally:
        stop_host(proc / ".mlops" / "dev", "process")
    assert os.environ["DOCKER_HOST"].endswith("no-engine.sock")
