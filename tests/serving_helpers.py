"""Build small served trees and talk to the endpoint host in tests."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import AZ, EXAMPLE, write

SAMPLE = json.loads((EXAMPLE / "samples" / "request.json").read_text())

SCRIPT = '''
import json, os, sys, time
from pathlib import Path

def init():
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init refuses: FAIL_INIT is set")

def run(raw_data):
    data = json.loads(raw_data)
    if data.get("raise"):
        raise ValueError("the script was asked to raise")
    if data.get("crash"):
        os._exit(3)
    if data.get("block"):
        while not Path(data["block"]).exists():
            time.sleep(0.01)
    print("scored", len(data.get("data", [])))
    return {"rows": len(data.get("data", [])), "pid": os.getpid()}
'''


def served_tree(root: Path, traffic: dict[str, int], green: str = "onnx", green_settings: str = "",
                mirror: dict[str, int] | None = None, settings: str = "") -> Path:
    """An endpoint `cancer` with blue (ONNX model v1) and green (ONNX v2 or a scoring script)."""
    root.mkdir(parents=True, exist_ok=True)
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['src/**']\n")
    shutil.copytree(EXAMPLE / "models" / "cancer-onnx", root / "models" / "onnx", dirs_exist_ok=True)
    write(root / "models" / "onnx.yml", f"$schema: {AZ}/model.schema.json\nname: cancer-onnx\nversion: '1'\n"
                                        "path: ./onnx\n")
    write(root / "src" / "score.py", SCRIPT)
    endpoint = f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: cancer\nauth_mode: key\ntraffic:\n"
    endpoint += "".join(f"  {k}: {v}\n" for k, v in traffic.items())
    if mirror:
        endpoint += "mirror_traffic:\n" + "".join(f"  {k}: {v}\n" for k, v in mirror.items())
    write(root / "endpoints" / "cancer.yml", endpoint)
    write(root / "deployments" / "blue.yml", deployment("blue", "model: azureml:cancer-onnx:1\n" + settings))
    if green == "onnx":
        body = "model: azureml:cancer-onnx:1\n"
    else:
        body = "code_configuration: {code: ../src, scoring_script: score.py}\n"
    write(root / "deployments" / "green.yml", deployment("green", body + (green_settings or settings)))
    return root


def deployment(name: str, body: str) -> str:
    return (f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: {name}\nendpoint_name: cancer\n"
            f"instance_type: Standard_DS3_v2\ninstance_count: 1\n{body}")


def stop_host(ws: Path, runtime: str = "process") -> None:
    """Stop the endpoint host of a workspace a test started (if any)."""
    if ws.exists():
        from mlops_gitops.backends.local import LocalBackend

        backend = LocalBackend(ws, runtime=runtime)
        assert backend.deployer is not None
        backend.deployer.controller.stop()


class Host:
    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        info = json.loads((workspace / "host.json").read_text())
        self.url = info["url"]
        self.pid = info["pid"]
        self.token = info["admin_token"]

        self.keys = self.keys_of("cancer")
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def keys_of(self, endpoint: str) -> tuple[str, str]:
        import sqlite3

        with sqlite3.connect(self.workspace / "state.db") as conn:
            row = conn.execute("SELECT primary_key, secondary_key FROM mg_endpoint_keys WHERE endpoint=?", (endpoint,))
            found: tuple[str, str] = row.fetchone()
        return found

    def auth(self, endpoint: str = "cancer") -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys_of(endpoint)[0]}"}

    def metrics(self) -> str:
        """GET /metrics with the workspace's metrics key (the file the host's controller writes for scrapers)."""
        key = (self.workspace / "metrics.key").read_text()
        res = self.client.get("/metrics", headers={"authorization": f"Bearer {key}"})
        assert res.status_code == 200, res.text
        return res.text

    def score(self, body: Any, key: str | None = "primary", deployment: str | None = None,
              raw: bytes | None = None) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if key is not None:
            headers["authorization"] = "Bearer " + (self.keys[0] if key == "primary" else
                                                    self.keys[1] if key == "secondary" else key)
        if deployment:
            headers["azureml-model-deployment"] = deployment
        content = raw if raw is not None else json.dumps(body).encode()
        return self.client.post("/endpoints/cancer/score", content=content, headers=headers)

    def status(self) -> dict[str, Any]:
        return self.client.get("/-/admin/status", headers={"x-mlops-admin-token": self.token}).json()

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.status()):
                return
            time.sleep(0.01)
        raise AssertionError("the host never reached the expected state")
