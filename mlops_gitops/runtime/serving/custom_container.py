"""Custom containers: a deployment whose environment is a serving image with an `inference_config`.

The image runs as it is (its own entrypoint) beside the host, with the model mounted where Azure
mounts it (AZUREML_MODEL_DIR); the host waits for its readiness route before the deployment may get
traffic, forwards scoring requests to its scoring route, and keeps doing what it does for every
deployment (keys, traffic split, mirroring, limits, metrics). Containers share the host's network
here: the image listens on the ports its inference_config names, so two deployments of images that
use the same port cannot run side by side (the second is refused with a message saying so).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx

from mlops_gitops.runtime.containers import Engine
from mlops_gitops.runtime.serving.config import DeploymentConfig
from mlops_gitops.runtime.serving.container_runner import ContainerRunner
from mlops_gitops.runtime.serving.errors import HttpError


def _route(cfg: DeploymentConfig, name: str) -> tuple[int, str] | None:
    route = (cfg.inference_config or {}).get(name)
    if not isinstance(route, dict):
        return None
    path = str(route.get("path") or "/")
    return int(route["port"]), path if path.startswith("/") else f"/{path}"


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


class CustomContainerRunner(ContainerRunner):
    kind = "custom_container"

    def __init__(self, cfg: DeploymentConfig, workspace: Path, log_path: Path) -> None:
        super().__init__(cfg, workspace, log_path)
        scoring = _route(cfg, "scoring_route")
        if scoring is None:
            raise ValueError(f"deployment '{cfg.name}': its environment's inference_config has no scoring_route")
        self.scoring = scoring
        self.readiness = _route(cfg, "readiness_route") or _route(cfg, "liveness_route") or scoring

    async def start(self) -> None:
        cfg = self.cfg
        self.engine = await asyncio.to_thread(Engine.connect)
        ports = sorted({self.scoring[0], self.readiness[0]})
        taken = [p for p in ports if _port_taken(p)]
        if taken:
            raise RuntimeError(f"the image {self.image} listens on port {taken[0]}, which is in use on this machine "
                               "(another deployment's container, or another program): containers share the host's "
                               "network here")
        env = {**cfg.environment_variables, "AZUREML_MODEL_DIR": cfg.model_mount or "",
               "AZUREML_ENDPOINT": cfg.endpoint, "AZUREML_DEPLOYMENT": cfg.name}
        mounts = {cfg.model_dir: cfg.model_mount} if cfg.model_dir and cfg.model_mount else {}
        self.container = await asyncio.to_thread(self.engine.serve, self.image, self.name, env, self.labels, mounts)
        self._follow_logs(self.container)
        client = httpx.AsyncClient(base_url="http://127.0.0.1", timeout=None,
                                   limits=httpx.Limits(max_connections=cfg.max_concurrency + 2))
        outcome = await self._ready(client)
        if outcome is not None:
            await client.aclose()
            raise RuntimeError(outcome)
        self.client = client
        self.meta = {"platform": "custom_container", "image": self.image}

    async def _ready(self, client: httpx.AsyncClient) -> str | None:
        """None once the readiness route answers 200; otherwise why the container is not ready."""
        assert self.engine is not None
        port, path = self.readiness
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.ready_timeout_s
        last = "it never answered"
        while loop.time() < deadline:
            try:
                resp = await client.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                if resp.status_code == 200:
                    return None
                last = f"its readiness route answered {resp.status_code}"
            except httpx.TransportError:
                status, code = await asyncio.to_thread(self.engine.state, self.container)
                if status not in ("running", "created", "configured", "initialized"):
                    return f"the container of {self.image} exited (code {code}) before it was ready: {self._tail()}"
            await asyncio.sleep(0.2)  # polled as Azure's readiness probe polls
        return (f"the container of {self.image} was not ready within {self.cfg.ready_timeout_s:g} s "
                f"(GET :{port}{path}; {last}): {self._tail()}")

    async def forward(self, body: bytes, v2: bool) -> bytes:
        if v2:
            raise HttpError(400, f"deployment '{self.cfg.name}' is a custom container: it serves its scoring route "
                                 f"(POST /endpoints/{self.cfg.endpoint}/score), not the Open Inference Protocol")
        if self.client is None:
            raise HttpError(502, f"the container of deployment '{self.cfg.name}' is restarting")
        port, path = self.scoring
        try:
            resp = await self.client.post(f"http://127.0.0.1:{port}{path}", content=body,
                                          headers={"content-type": "application/json"})
        except httpx.TransportError as exc:
            await self._maybe_restart(exc)
            raise HttpError(502, f"the container of deployment '{self.cfg.name}' did not answer; it is being "
                                 "restarted (see `mlops-gitops endpoint logs`)") from None
        if resp.status_code != 200:
            raise HttpError(resp.status_code, resp.text[:2000] or f"the container answered {resp.status_code}")
        return resp.content

    def metadata(self) -> dict[str, Any]:
        return self.meta
