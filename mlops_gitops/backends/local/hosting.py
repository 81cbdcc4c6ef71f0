"""The local workspace's Serving capability: its endpoint host, requests to it, its keys and its logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_gitops.backends.base import HostInfo
from mlops_gitops.backends.local.serving import ServingController
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import ConfigError
from mlops_gitops.fsutil import UnsafePathError, safe_join


class LocalServing:
    def __init__(self, store: LocalStore, controller: ServingController, serves: bool = True,
                 on_key_change: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.controller = controller
        self.serves = serves  # runtime none: endpoints are recorded, not served (their logs and keys remain)
        self._on_key_change = on_key_change  # the backend re-sends the endpoint's keys to a running host

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
        if not self.serves or not self.controller.config().endpoints or self.controller.info() is not None:
            return None
        return self.start()

    def served_endpoints(self) -> list[str]:
        return sorted(self.controller.config().endpoints)

    def status(self) -> dict[str, Any] | None:
        return self.controller.status()

    def score(self, endpoint: str, body: bytes, deployment: str | None = None) -> tuple[int, str | None, str]:
        self._serving()
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
