"""Deployments under `runtime: container`: the deployment's image runs beside the host, which forwards.

The host keeps doing what it does for every deployment (keys, traffic, mirroring, limits, metrics);
the container runs the same scoring server on a private port of the host network with a random key,
so nothing reaches it around the host. A container that dies is restarted and the exit is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import Any

import httpx

from mlops_gitops.fsutil import ensure_dir, open_private
from mlops_gitops.runtime.containers import LABEL, ContainerError, Engine
from mlops_gitops.runtime.serving.config import DeploymentConfig
from mlops_gitops.runtime.serving.errors import HttpError

READY_TIMEOUT_S = 300
log = logging.getLogger("mlops_gitops.host")


def workspace_label(workspace: Path) -> dict[str, str]:
    return {f"{LABEL}.workspace": hashlib.sha256(str(workspace).encode()).hexdigest()[:16]}


def reap(workspace: Path) -> None:
    """Remove containers a previous host of this workspace left behind (it was killed)."""
    engine = Engine.connect()
    for container in engine.labelled(workspace_label(workspace)):
        log.info("removing leftover container %s", container.name)
        with contextlib.suppress(ContainerError):
            engine.remove(container.name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ContainerRunner:
    kind = "container"

    def __init__(self, cfg: DeploymentConfig, workspace: Path, log_path: Path) -> None:
        if not cfg.image:
            raise ValueError("a container deployment needs an image")
        self.cfg = cfg
        self.image = cfg.image
        self.log_path = log_path
        self.labels = {**workspace_label(workspace), f"{LABEL}.endpoint": cfg.endpoint,
                       f"{LABEL}.deployment": cfg.name}
        self.name = f"mlops-{self.labels[f'{LABEL}.workspace'][:8]}-{cfg.endpoint}-{cfg.name}-{cfg.spec_hash[:8]}"
        self.token = secrets.token_urlsafe(24)
        self.engine: Engine | None = None
        self.container: Any = None
        self.client: httpx.AsyncClient | None = None
        self.meta: dict[str, Any] = {}
        self._restarting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.engine = await asyncio.to_thread(Engine.connect)
        for _ in range(3):  # a port taken between choosing and binding it: choose another
            port = _free_port()
            self.container = await asyncio.to_thread(
                self.engine.run, self.image, self.name, ["--port", str(port), "--host", "127.0.0.1"],
                {**self.cfg.environment_variables, "MLOPS_GITOPS_ENDPOINT_KEYS": self.token}, self.labels)
            self._follow_logs(self.container)
            client = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=None,
                headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
                limits=httpx.Limits(max_connections=self.cfg.max_concurrency + 2))
            outcome = await self._wait_ready(client)
            if outcome is None:
                self.client = client
                return
            await client.aclose()
            await asyncio.to_thread(self.engine.remove, self.name)
            if "cannot listen" not in outcome:
                raise RuntimeError(outcome)
        raise RuntimeError("could not find a free port for the container")

    async def _wait_ready(self, client: httpx.AsyncClient) -> str | None:
        """None once the container serves the deployment; otherwise why it does not."""
        assert self.engine is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        path = f"/v2/models/{self.cfg.endpoint}"
        while loop.time() < deadline:
            try:  # the server answers only after it loaded its deployment, so one answer settles it
                resp = await client.get(path, timeout=READY_TIMEOUT_S)
            except httpx.TransportError:
                status, code = await asyncio.to_thread(self.engine.state, self.container)
                if status not in ("running", "created", "configured", "initialized"):
                    return f"the container exited (code {code}) before it was ready: {self._tail()}"
                await asyncio.sleep(0.1)  # not listening yet: poll again
                continue
            if resp.status_code == 200:
                self.meta = {k: v for k, v in resp.json().items() if k not in ("name", "deployment", "versions")}
                return None
            return f"the container did not load the deployment: {self._tail()}"
        return f"the container was not ready within {READY_TIMEOUT_S} s: {self._tail()}"

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-4:]) or "(no log)"

    def _follow_logs(self, container: Any) -> None:
        """Copy the container's output into the deployment log, as `endpoint logs` reads it."""
        assert self.engine is not None
        engine, path = self.engine, self.log_path
        ensure_dir(path.parent)
        ready = threading.Event()

        def copy() -> None:
            # ends when the container goes
            with os.fdopen(open_private(path), "ab") as out, contextlib.suppress(Exception):
                stream = engine.logs(container, follow=True)
                ready.set()
                for chunk in stream:
                    out.write(chunk)
                    out.flush()
            ready.set()

        threading.Thread(target=copy, name=f"logs-{self.name}", daemon=True).start()
        ready.wait(10)

    def metadata(self) -> dict[str, Any]:
        return self.meta

    async def forward(self, body: bytes, v2: bool) -> bytes:
        if self.client is None:
            raise HttpError(502, f"the container of deployment '{self.cfg.name}' is restarting")
        path = f"/v2/models/{self.cfg.endpoint}/infer" if v2 else f"/endpoints/{self.cfg.endpoint}/score"
        try:
            resp = await self.client.post(path, content=body)
        except httpx.TransportError as exc:
            await self._maybe_restart(exc)
            raise HttpError(502, f"the container of deployment '{self.cfg.name}' did not answer; it is being "
                                 "restarted (see `mlops-gitops endpoint logs`)") from None
        if resp.status_code != 200:
            try:
                message = resp.json().get("error") or resp.text
            except ValueError:
                message = resp.text
            raise HttpError(resp.status_code, str(message))
        return resp.content

    async def _maybe_restart(self, exc: Exception) -> None:
        assert self.engine is not None
        status, code = await asyncio.to_thread(self.engine.state, self.container)
        if status == "running" or self._restarting is not None:
            return
        self._note(f"the container exited (code {code}); restarting it")
        self._restarting = asyncio.ensure_future(self._restart())

    async def _restart(self) -> None:
        old, self.client = self.client, None
        if old is not None:
            await old.aclose()
        try:
            await self.start()
        except (RuntimeError, ContainerError) as exc:
            self._note(f"the container could not be restarted: {exc}")
        finally:
            self._restarting = None

    def _note(self, message: str) -> None:
        log.warning("%s/%s: %s", self.cfg.endpoint, self.cfg.name, message)
        with os.fdopen(open_private(self.log_path), "a", encoding="utf-8") as f:
            f.write(f"[mlops-gitops] {message}\n")

    async def close(self) -> None:
        if self._restarting is not None:
            self._restarting.cancel()
        if self.client is not None:
            await self.client.aclose()
        if self.engine is not None:
            with contextlib.suppress(ContainerError):
                await asyncio.to_thread(self.engine.remove, self.name)
