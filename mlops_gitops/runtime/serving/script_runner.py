"""Scoring-script deployments: `instance_count` worker processes in the deployment's environment.

A request goes to a free worker; a worker that crashes is restarted (the crash is in the deployment
log); one that outlives the request timeout is killed and restarted so it cannot wedge the deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import sys
from pathlib import Path
from typing import Any

from mlops_gitops.fsutil import ensure_dir, open_private
from mlops_gitops.runtime.serving.collector import COLLECTOR_ENV, KNOWN
from mlops_gitops.runtime.serving.config import DeploymentConfig, local_workers
from mlops_gitops.runtime.serving.errors import HttpError

WORKER = Path(__file__).with_name("worker.py")
READY_TIMEOUT_S = 300
log = logging.getLogger("mlops_gitops.host")


class Worker:
    def __init__(self, cfg: DeploymentConfig, index: int, log_path: Path | None,
                 collector: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.index = index
        self.log_path = log_path
        self.collector = collector  # where its script's Collector spools custom collections (shims/azureml)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        cfg = self.cfg
        env = {**os.environ, **cfg.environment_variables, "PYTHONUNBUFFERED": "1",
               "AZUREML_MODEL_DIR": cfg.model_dir or "", "AZUREML_ENDPOINT": cfg.endpoint,
               "AZUREML_DEPLOYMENT": cfg.name, "AZUREML_WORKER_INDEX": str(self.index)}
        if self.collector is not None:
            env[COLLECTOR_ENV] = json.dumps(self.collector)
        with contextlib.ExitStack() as stack:
            log_file = None  # no log file (in an image): the script's output joins the host's stderr
            if self.log_path is not None:
                ensure_dir(self.log_path.parent)
                log_file = stack.enter_context(os.fdopen(open_private(self.log_path), "ab"))
            self.proc = await asyncio.create_subprocess_exec(
                cfg.python or sys.executable, str(WORKER), cfg.code_dir or ".", cfg.scoring_script or "score.py",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log_file, env=env,
                start_new_session=True)
        try:
            status, payload = await asyncio.wait_for(self._receive(), READY_TIMEOUT_S)
        except (TimeoutError, ConnectionError) as exc:
            await self.kill()
            reason = "did not finish init()" if isinstance(exc, TimeoutError) else "exited during init()"
            raise RuntimeError(f"worker {self.index} {reason}; see {self.log_path or 'the host log'}") from None
        if status != 0:
            await self.kill()
            raise RuntimeError(f"init() failed: {payload.decode(errors='replace')} "
                               f"(log: {self.log_path or 'the host log'})")

    async def _receive(self) -> tuple[int, bytes]:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            header = await self.proc.stdout.readexactly(5)
            status, size = struct.unpack(">BI", header)
            return status, await self.proc.stdout.readexactly(size)
        except asyncio.IncompleteReadError:
            raise ConnectionError("worker exited") from None

    async def score(self, body: bytes) -> tuple[int, bytes]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        await self.proc.stdin.drain()
        return await self._receive()

    async def exit_code(self) -> int | None:
        """The exit code of a worker whose pipe closed (it is reaped here)."""
        if self.proc is None:
            return None
        try:
            return await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            return None

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the worker exits at end of input
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()


class ScriptRunner:
    kind = "script"

    def __init__(self, cfg: DeploymentConfig, log_path: Path | None, spool: Path | None = None) -> None:
        self.cfg = cfg
        self.log_path = log_path
        custom = {name: rate for name, rate in cfg.collect.items() if name not in KNOWN}
        collector = None if spool is None or not custom else {
            "spool": str(spool), "rates": custom,
            "meta": {"endpoint": cfg.endpoint, "deployment": cfg.name, "model_version": cfg.model_version,
                     "rolling_rate": cfg.rolling_rate}}
        self.workers = [Worker(cfg, i, log_path, collector) for i in range(local_workers(cfg.instance_count))]
        self.idle: asyncio.Queue[Worker] = asyncio.Queue()
        self.restarts: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            await asyncio.gather(*(w.start() for w in self.workers))
        except Exception:
            await asyncio.gather(*(w.kill() for w in self.workers))
            raise
        for w in self.workers:
            self.idle.put_nowait(w)

    async def score(self, body: bytes) -> bytes:
        worker = await self.idle.get()
        healthy = False
        try:
            status, payload = await worker.score(body)
            healthy = True
        except ConnectionError:
            code = await worker.exit_code()
            self._note(f"worker {worker.index} crashed (exit code {code}) while scoring; restarting it")
            raise HttpError(502, f"the scoring worker of deployment '{self.cfg.name}' crashed; it is being "
                                 "restarted (see `mlops-gitops endpoint logs`)") from None
        except asyncio.CancelledError:  # request timeout: the worker may be stuck in run()
            self._note(f"worker {worker.index} exceeded request_timeout_ms; restarting it")
            raise
        finally:
            if healthy:
                self.idle.put_nowait(worker)
            else:
                task = asyncio.ensure_future(self._restart(worker))
                self.restarts.add(task)
                task.add_done_callback(self.restarts.discard)
        if status != 0:
            raise HttpError(500, f"the scoring script raised {payload.decode(errors='replace')}")
        return payload

    async def _restart(self, worker: Worker) -> None:
        await worker.kill()
        try:
            await worker.start()
        except RuntimeError as exc:
            self._note(f"worker {worker.index} could not be restarted: {exc}")
            return
        self.idle.put_nowait(worker)

    def _note(self, message: str) -> None:
        log.warning("%s/%s: %s", self.cfg.endpoint, self.cfg.name, message)
        if self.log_path is None:
            return
        with os.fdopen(open_private(self.log_path), "a", encoding="utf-8") as f:
            f.write(f"[mlops-gitops] {message}\n")

    async def close(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
