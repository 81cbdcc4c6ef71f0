"""Custom containers: a deployment whose environment is a serving image with an inference_config runs that
image in the container runtime, with the model mounted where Azure mounts it, behind the host's keys and
traffic. The serving image is built here, from the base image scripts/ensure-podman.sh makes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.helpers import AZ, EXAMPLE, REPO_ROOT, Result, init_repo, write
from tests.serving_helpers import stop_host

pytestmark = [pytest.mark.slow, pytest.mark.container]
Cli = Callable[..., Result]
IMAGE = "mlops-gitops-test/custom-server:1"

SERVER = '''
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL = Path(os.environ["AZUREML_MODEL_DIR"])

class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/live":
            self._send(200, {"live": True})
        elif self.path == "/ready":  # ready once the model Azure mounts can be read
            ready = not os.environ.get("NEVER_READY") and any(MODEL.rglob("*.onnx"))
            self._send(200 if ready else 503, {"ready": ready})
        else:
            self._send(404, {"error": "no such route"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        if self.path != "/api/score":
            self._send(404, {"error": "no such route"})
        elif body.get("fail"):
            self._send(422, {"error": "the server refused this input"})
        else:
            self._send(200, {"model_dir": str(MODEL), "files": sorted(p.name for p in MODEL.rglob("*") if p.is_file()),
                             "deployment": os.environ.get("AZUREML_DEPLOYMENT"), "rows": len(body.get("data", []))})

    def log_message(self, *args):
        print("request:", *args, flush=True)

ThreadingHTTPServer(("127.0.0.1", int(os.environ["SERVER_PORT"])), Handler).serve_forever()
'''


@pytest.fixture(scope="session")
def docker_host() -> str:
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "ensure-podman.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, f"scripts/ensure-podman.sh failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1].partition("=")[2]


@pytest.fixture(scope="session")
def server_image(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small serving image of the kind users bring: its own HTTP server, its own routes and port."""
    context = tmp_path_factory.mktemp("custom-image")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text("FROM mlops-gitops-base:bookworm\nCOPY server.py /app/server.py\n"
                                        'CMD ["python3", "/app/server.py"]\n')
    docker.DockerClient(base_url=docker_host).images.build(path=str(context), tag=IMAGE, rm=True)
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(name: str, port: int) -> str:
    routes = "".join(f"  {route}_route: {{port: {port}, path: {path}}}\n"
                     for route, path in (("liveness", "/live"), ("readiness", "/ready"), ("scoring", "/api/score")))
    return (f"$schema: {AZ}/environment.schema.json\nname: {name}\nversion: '1'\nimage: {IMAGE}\n"
            f"inference_config:\n{routes}")


PORTS: dict[Path, tuple[int, int]] = {}


def custom_tree(root: Path, runtime: str, green: bool = False) -> Path:
    write(root / "mlops.yaml", f"workspaces:\n  dev: {{path: .mlops/dev, runtime: {runtime}}}\n"
                               "default_workspace: dev\n")
    shutil.copytree(EXAMPLE / "models" / "cancer-onnx", root / "models" / "onnx", dirs_exist_ok=True)
    write(root / "models" / "onnx.yml", f"$schema: {AZ}/model.schema.json\nname: cancer-onnx\nversion: '1'\n"
                                        "path: ./onnx\n")
    blue_port, green_port = PORTS.setdefault(root, (free_port(), free_port()))  # the same tree, the same ports
    write(root / "environments" / "server.yml", environment("server", blue_port))
    write(root / "environments" / "server-green.yml", environment("server_green", green_port))
    traffic = "{blue: 100, green: 0}" if green else "{blue: 100}"
    write(root / "endpoints" / "custom.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: custom\n"
                                             f"auth_mode: key\ntraffic: {traffic}\n")
    deployment = (f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: {{name}}\nendpoint_name: custom\n"
                  "model: azureml:cancer-onnx:1\nenvironment: azureml:{env}:1\ninstance_type: Standard_DS3_v2\n"
                  "instance_count: 1\nenvironment_variables: {{SERVER_PORT: '{port}'{extra}}}\n"
                  "readiness_probe: {{initial_delay: 0, period: 1, failure_threshold: {tries}}}\n")
    write(root / "deployments" / "blue.yml", deployment.format(name="blue", env="server", port=blue_port, extra="",
                                                               tries=120))
    if green:  # an image that never becomes ready
        write(root / "deployments" / "green.yml", deployment.format(
            name="green", env="server_green", port=green_port, extra=", NEVER_READY: '1'", tries=3))
    return init_repo(root) if not (root / ".git").exists() else _committed(root)


def _committed(root: Path) -> Path:
    from tests.helpers import commit_all

    commit_all(root, "Add green")
    return root


@pytest.fixture
def repo(server_image: str, docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.delenv("MLOPS_GITOPS_RUNTIME")
    root = tmp_path / "repo"
    yield root
    stop_host(root / ".mlops" / "dev", "container")


def test_a_custom_container_serves_behind_the_hosts_keys(cli: Cli, repo: Path) -> None:
    custom_tree(repo, "container")
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 0, res.out + res.err
    info = json.loads((repo / ".mlops" / "dev" / "host.json").read_text())
    keys = json.loads(cli("endpoint", "get-credentials", "custom", cwd=repo).out)
    import httpx

    with httpx.Client(base_url=info["url"], timeout=30) as client:
        auth = {"authorization": f"Bearer {keys['primaryKey']}"}
        answer = client.post("/endpoints/custom/score", json={"data": [[1, 2], [3, 4]]}, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # the model is mounted where Azure mounts it, and the image reads it there
        assert body["model_dir"] == "/var/azureml-app/azureml-models/cancer-onnx/1"
        assert "model.onnx" in body["files"] and body["deployment"] == "blue" and body["rows"] == 2
        assert client.post("/endpoints/custom/score", json={"data": []}).status_code == 401  # the host's keys
        refused = client.post("/endpoints/custom/score", json={"fail": True}, headers=auth)
        assert refused.status_code == 422 and "refused this input" in refused.text  # its own answer, passed on
        metrics = client.get("/metrics", headers={"authorization": f"Bearer {_metrics_key(cli, repo)}"}).text
        assert 'deployment="blue"' in metrics
    deadline = time.monotonic() + 60
    while "request:" not in cli("endpoint", "logs", "custom", cwd=repo).out:  # the container's own output,
        assert time.monotonic() < deadline, "the container's output never reached the deployment log"
        time.sleep(0.2)  # copied from the engine's log stream as it comes


def _metrics_key(cli: Cli, repo: Path) -> str:
    return str(json.loads(cli("endpoint", "get-credentials", "--metrics", cwd=repo).out)["metricsKey"])


def test_an_image_that_never_becomes_ready_fails_its_deployment_and_traffic_stays(cli: Cli, repo: Path) -> None:
    custom_tree(repo, "container")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    custom_tree(repo, "container", green=True)  # green added, with an image that never becomes ready
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 1
    assert "was not ready within 3 s (GET :" in res.out + res.err and "/ready; its readiness route answered 503" \
        in res.out + res.err
    keys = json.loads(cli("endpoint", "get-credentials", "custom", cwd=repo).out)
    info = json.loads((repo / ".mlops" / "dev" / "host.json").read_text())
    import httpx

    answer = httpx.post(f"{info['url']}/endpoints/custom/score", json={"data": [[1]]},
                        headers={"authorization": f"Bearer {keys['primaryKey']}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["deployment"] == "blue"


def test_the_process_runtime_refuses_a_custom_container_at_plan(cli: Cli, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_GITOPS_RUNTIME")
    repo = custom_tree(tmp_path / "repo", "process")
    res = cli("plan", cwd=repo)
    assert res.code == 1
    assert "deployments/blue.yml:5:1: error DEP001" in res.err
    assert "runs only under `runtime: container`" in res.err
