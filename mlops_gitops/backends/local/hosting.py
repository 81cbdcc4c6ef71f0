"""The local workspace's Serving capability: its endpoint host, requests to it, its keys and its logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_gitops.backends.base import HostInfo, Served
from mlops_gitops.backends.local.deploy import Deployer
from mlops_gitops.backends.local.serving import ServingController
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import ConfigError
from mlops_gitops.fsutil import UnsafePathError, safe_join
from mlops_gitops.state import ActualResource


class LocalServing:
    def __init__(self, store: LocalStore, controller: ServingController, serves: bool = True,
                 on_key_change: Callable[[str], None] | None = None, deployer: Deployer | None = None,
                 by_hosts: bool = False) -> None:
        self.store = store
        self.controller = controller
        self.serves = serves  # runtime none: endpoints are recorded, not served (their logs and keys remain)
        self._on_key_change = on_key_change  # the backend re-sends the endpoint's keys to a running host
        self._deployer = deployer
        self._by_hosts = by_hosts

    @property
    def by_hosts(self) -> bool:
        return self._by_hosts

    def _serving(self) -> None:
        if not self.serves:
            raise ConfigError(f"the workspace at {self.store.path} has runtime: none; it records endpoints "
                              "without serving them")

    def host(self) -> HostInfo | None:
        info = self.controller.info()
        return HostInfo(info.url, info.pid) if info else None

    def start(self) -> HostInfo:
        self._serving()
        info = self.controller.ensure_started()
        return HostInfo(info.url, info.pid)

    def stop(self) -> int | None:
        return self.controller.stop()

    def ensure_serving(self) -> HostInfo | None:
        if self._by_hosts:  # the hosts that follow the workspace serve it, not the machine that applies
            return None
        if not self.serves or not self.controller.config().endpoints or self.controller.info() is not None:
            return None
        return self.start()

    def served_endpoints(self) -> list[str]:
        return sorted(self.controller.config().endpoints)

    def status(self) -> dict[str, Any] | None:
        return self.controller.status()

    def score(self, endpoint: str, body: bytes, deployment: str | None = None) -> tuple[int, str | None, str]:
        self._serving()
        if self._by_hosts and self.controller.info() is None:
            raise ConfigError(f"the workspace at {self.store.path} is served by the hosts that follow it (serving: "
                              "hosts) and none runs on this machine: send the request to one of them (`endpoint "
                              "show` lists them) or run it on a server that runs `mlops-gitops serve --follow`")
        key = self.store.endpoint_keys(endpoint)[0]
        return self.controller.score(endpoint, body, key, deployment)

    def endpoint_keys(self, endpoint: str) -> tuple[str, str]:
        return self.store.endpoint_keys(endpoint)

    def regenerate_key(self, endpoint: str, which: str) -> tuple[str, str]:
        keys = self.store.regenerate_key(endpoint, which)
        if self._on_key_change is not None and self.controller.info() is not None:
            self._on_key_change(endpoint)
        return keys

    def metrics_credentials(self) -> dict[str, str]:
        return {"metricsKey": self.store.metrics_key(), "file": str(self.store.path / "metrics.key")}

    def logs(self, endpoint: str, deployment: str | None, lines: int) -> list[tuple[str, list[str]]]:
        root = self.store.path / "logs"
        try:
            folder = safe_join(root, endpoint, what="endpoint name")
            source = ([root / "host.log", *sorted(folder.glob("*.log"))] if deployment is None
                      else [safe_join(folder, f"{deployment}.log", what="deployment name")])
        except UnsafePathError as exc:
            raise ConfigError(str(exc)) from None
        shown: list[tuple[str, list[str]]] = []
        for file in source:
            if not file.exists():
                continue
            tail = file.read_text(errors="replace").splitlines()[-lines:]
            if file.name == "host.log":
                tail = [line for line in tail if f" {endpoint}" in line or f"{endpoint}/" in line]
            if tail:
                shown.append((Path(file).relative_to(self.store.path).as_posix(), tail))
        return shown

    # -- hosts that follow the workspace ------------------------------------------------------------

    def target(self) -> LocalHostTarget:
        self._serving()
        assert self._deployer is not None  # serves implies a deployer
        return LocalHostTarget(self._deployer)

    def report_host(self, host_id: str, url: str, pid: int, serial: int, status: dict[str, Any]) -> None:
        self.store.report_host(host_id, url, pid, serial, status)

    def forget_host(self, host_id: str) -> None:
        self.store.forget_host(host_id)

    def figures(self) -> dict[str, dict[str, Any]]:
        return self.store.figures()

    def hosts(self) -> list[dict[str, Any]]:
        return self.store.hosts()


class LocalHostTarget:
    """This machine's endpoint host process (serving.json and its admin API), converged by the controller."""

    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer
        self.controller = deployer.controller

    def start(self) -> HostInfo:
        info = self.controller.ensure_started()
        return HostInfo(info.url, info.pid)

    def stop(self) -> int | None:
        return self.controller.stop()

    def served(self) -> Served:
        config = self.controller.config()
        routes = {name: {d: w for d, w in {**e.mirror_traffic, **e.traffic}.items() if w}
                  for name, e in config.endpoints.items()}
        return Served({key: d.spec_hash or "" for key, d in config.deployments.items()}, routes)

    def load(self, deployment: ActualResource) -> None:
        self.controller.put_deployment(self.deployer.deployment_config(deployment))

    def route(self, endpoint: ActualResource, traffic_spec: dict[str, Any]) -> bool:
        cfg = self.deployer.endpoint_config(endpoint.address.name, endpoint_spec=endpoint.spec,
                                            traffic_spec=traffic_spec)
        if self.controller.config().endpoints.get(cfg.name) == cfg:
            return False
        self.controller.put_endpoint(cfg)
        return True

    def unload(self, endpoint: str, name: str) -> None:
        self.controller.delete_deployment(endpoint, name)

    def drop(self, endpoint: str) -> None:
        self.controller.delete_endpoint(endpoint)
