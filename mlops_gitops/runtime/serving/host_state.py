"""The host's live state: loaded deployments and routing tables, changed only by admin calls."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops.fsutil import safe_join
from mlops_gitops.runtime.serving.collector import KNOWN, CollectorPool, DeploymentCollector
from mlops_gitops.runtime.serving.config import DeploymentConfig, EndpointConfig, ServingConfig
from mlops_gitops.runtime.serving.errors import HttpError
from mlops_gitops.runtime.serving.metrics import Metrics
from mlops_gitops.runtime.serving.router import Route

log = logging.getLogger("mlops_gitops.host")


@dataclass
class LiveDeployment:
    cfg: DeploymentConfig
    runner: Any  # OnnxRunner or ScriptRunner
    collect: DeploymentCollector | None = None  # its data_collector, when one is on
    inflight: int = 0
    served: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    async def drain_and_close(self) -> None:
        while self.inflight:
            self.drained.clear()
            await self.drained.wait()
        close = getattr(self.runner, "close", None)
        if close is not None:
            await close()


class HostState:
    def __init__(self, workspace: Path, log_files: bool = True) -> None:
        self.workspace = workspace
        self.log_files = log_files  # False in an image: scripts log to the host's stderr
        self.config = ServingConfig()
        self.routes: dict[str, Route] = {}
        self.deployments: dict[str, LiveDeployment] = {}
        self.metrics = Metrics()
        self._lock = asyncio.Lock()  # admin changes one at a time; requests never wait on it
        self.collectors = CollectorPool(workspace / "collected")

    async def _start_runner(self, cfg: DeploymentConfig) -> Any:
        log_path = safe_join(self.workspace / "logs", cfg.endpoint, f"{cfg.name}.log")
        if cfg.image:
            from mlops_gitops.runtime.serving.container_runner import ContainerRunner
            from mlops_gitops.runtime.serving.custom_container import CustomContainerRunner

            kind = CustomContainerRunner if cfg.inference_config else ContainerRunner
            container = kind(cfg, self.workspace, log_path)
            try:
                await container.start()
            except BaseException:
                await container.close()
                raise
            return container
        if cfg.scoring_script:
            from mlops_gitops.runtime.serving.script_runner import ScriptRunner

            runner = ScriptRunner(cfg, log_path if self.log_files else None, self.collectors.spool)
            await runner.start()
            return runner
        if not cfg.model_dir:
            raise ValueError("a deployment without a scoring script needs a model")
        if cfg.model_format == "triton_model":
            from mlops_gitops.runtime.serving.triton_repo import TritonRepository

            return await asyncio.to_thread(TritonRepository, Path(cfg.model_dir))
        from mlops_gitops.runtime.serving.onnx_runner import OnnxRunner

        return await asyncio.to_thread(OnnxRunner, Path(cfg.model_dir))

    async def put_deployment(self, cfg: DeploymentConfig) -> None:
        """Load (or reload) a deployment; it replaces the old one only once it is ready."""
        async with self._lock:
            old = self.deployments.get(cfg.key)
            if old is not None and old.cfg.spec_hash == cfg.spec_hash and cfg.spec_hash:
                return
            try:
                runner = await self._start_runner(cfg)
            except Exception as exc:
                log.error("deployment %s failed to start: %s", cfg.key, exc)
                raise HttpError(422, f"deployment {cfg.key} is not ready: {exc}") from None
            # the host samples the known collections; a script's Collector spools custom ones from its worker
            collect = (self.collectors.collector(cfg.key, cfg.endpoint, cfg.name, cfg.model_version,
                                                 {k: v for k, v in cfg.collect.items() if k in KNOWN},
                                                 cfg.rolling_rate) if cfg.collect else None)
            self.deployments[cfg.key] = LiveDeployment(cfg, runner, collect)
            self.config.deployments[cfg.key] = cfg
            log.info("deployment %s ready", cfg.key)
        if old is not None:
            await old.drain_and_close()
            if old.collect is not None and collect is None:
                self.collectors.retire(cfg.key)

    async def delete_deployment(self, key: str) -> None:
        async with self._lock:
            endpoint, _, name = key.partition("/")
            route = self.routes.get(endpoint)
            if route is not None and name in route.deployments():
                raise HttpError(409, f"deployment {key} still receives traffic; move its traffic away first")
            live = self.deployments.pop(key, None)
            self.config.deployments.pop(key, None)
        if live is not None:
            await live.drain_and_close()
            self.collectors.retire(key)
            log.info("deployment %s stopped", key)

    async def put_endpoint(self, cfg: EndpointConfig) -> None:
        """Swap the endpoint's routing table in one assignment: requests see the old or the new split."""
        async with self._lock:
            for dep, weight in {**cfg.traffic, **cfg.mirror_traffic}.items():
                if weight > 0 and f"{cfg.name}/{dep}" not in self.deployments:
                    raise HttpError(409, f"deployment {cfg.name}/{dep} is not ready; it cannot take traffic")
            self.routes[cfg.name] = Route.build(cfg)
            self.config.endpoints[cfg.name] = cfg
            log.info("endpoint %s traffic %s mirror %s", cfg.name, cfg.traffic, cfg.mirror_traffic)

    async def delete_endpoint(self, name: str) -> None:
        async with self._lock:
            self.routes.pop(name, None)
            self.config.endpoints.pop(name, None)
            keys = [k for k in self.deployments if k.startswith(name + "/")]
            lives = [self.deployments.pop(k) for k in keys]
            for k in keys:
                self.config.deployments.pop(k, None)
        for key, live in zip(keys, lives, strict=True):
            await live.drain_and_close()
            self.collectors.retire(key)

    async def load(self, config: ServingConfig) -> None:
        """Start from a saved configuration (host start): what fails to load is logged and left out."""
        if any(cfg.image for cfg in config.deployments.values()):
            from mlops_gitops.runtime.serving.container_runner import reap

            try:
                await asyncio.to_thread(reap, self.workspace)
            except Exception as exc:  # no engine: each container deployment reports it when it loads
                log.error("could not clean up leftover containers: %s", exc)
        for cfg in config.deployments.values():
            try:
                await self.put_deployment(cfg)
            except HttpError as exc:
                log.error("%s", exc.message)
        for ecfg in config.endpoints.values():
            try:
                await self.put_endpoint(ecfg)
            except HttpError as exc:
                log.error("endpoint %s not served: %s", ecfg.name, exc.message)

    async def close(self) -> None:
        for live in list(self.deployments.values()):
            await live.drain_and_close()
        await asyncio.to_thread(self.collectors.close)  # what was sampled is written before the host exits

    def status(self) -> dict[str, Any]:
        return {
            "endpoints": {n: {"traffic": c.traffic, "mirror_traffic": c.mirror_traffic, "auth_mode": c.auth_mode}
                          for n, c in self.config.endpoints.items()},
            "deployments": {k: {"ready": True, "kind": getattr(d.runner, "kind", "?"), "inflight": d.inflight,
                                "served": d.served,
                                "model": (f"{d.cfg.model_name}:{d.cfg.model_version}" if d.cfg.model_name else None),
                                "spec_hash": d.cfg.spec_hash,
                                **({"collected": {"spooled": d.collect.spooled, "pending": len(d.collect.pending),
                                                  "dropped": d.collect.dropped}} if d.collect else {})}
                            for k, d in self.deployments.items()},
        }
