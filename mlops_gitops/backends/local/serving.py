"""Drive the endpoint host from the local backend: start it, feed it deployments, move traffic.

Files of a deployment come out of the content-addressed store into folders the host can read:
models/<name>/<version>/ (hard links) and deployments/<endpoint>/<name>/<hash>/code/.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops_gitops import progress
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import copy_private, ensure_dir, open_lock, open_private, safe_join, write_private
from mlops_gitops.runtime.serving.config import DeploymentConfig, EndpointConfig, ServingConfig

START_TIMEOUT_S = 60
ADMIN_TIMEOUT_S = 900  # loading a deployment may build its environment first


class HostInfo:
    def __init__(self, data: dict[str, Any]) -> None:
        self.pid = int(data["pid"])
        self.port = int(data["port"])
        self.token = str(data["admin_token"])
        self.url = str(data["url"])


def _alive(pid: int) -> bool:
    try:  # when the host is our own child (started by this process), reap it once it has exited
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The host of a workspace: the serving host, with the gateway that starts batch jobs (named, not imported:
# the controller sits above this layer).
HOST_MODULE = "mlops_gitops.controller.workspace_host"


class ServingController:
    def __init__(self, workspace: Path, port: int = 0, metrics_key: Callable[[], str] | None = None,
                 store_env: dict[str, str] | None = None, endpoint_ports: dict[str, int] | None = None) -> None:
        self.workspace = workspace
        self.endpoint_ports = endpoint_ports or {}
        self.store_env = store_env or {}  # where the host's batch jobs find the workspace's database and files
        self.port = port
        self.metrics_key = metrics_key  # the workspace's key of /metrics, written for the host to read
        self.config_path = workspace / "serving.json"
        self._config_lock = threading.Lock()  # actions run in parallel; serving.json is read-modify-write
        self._start_lock = threading.Lock()
        self._known: HostInfo | None = None  # the host this process last found answering
        self._config: tuple[tuple[int, int], ServingConfig] | None = None  # serving.json as last read or written

    # -- the host process ----------------------------------------------------------------------

    def info(self) -> HostInfo | None:
        path = self.workspace / "host.json"
        try:
            info = HostInfo(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError):
            return None
        if not _alive(info.pid):
            return None
        try:
            status, _ = self._request(info, "GET", "/v2/health/live", None, timeout=5)
        except OSError:
            return None
        return info if status == 200 else None

    def ensure_started(self) -> HostInfo:
        known = self._known
        if known is not None and _alive(known.pid):  # answered before and still runs: no health round trip
            return known
        info = self.info()
        if info is not None:
            self._known = info
            return info
        # One host per workspace: parallel actions (threads) and other commands (processes) that find
        # none running queue here, and all but the first find the one the first started.
        ensure_dir(self.workspace)
        with self._start_lock, open_lock(self.workspace / "host.start.lock") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                with progress.task("starting the endpoint host"):
                    self._known = self.info() or self._start()
                return self._known
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _start(self) -> HostInfo:
        if self.metrics_key is not None:
            key = self.metrics_key()
            self._edit(lambda c: setattr(c, "metrics_key", key))
            write_private(self.workspace / "metrics.key", key)  # for Prometheus' credentials_file
        ensure_dir(self.workspace / "logs")
        (self.workspace / "host.json").unlink(missing_ok=True)
        with os.fdopen(open_private(self.workspace / "logs" / "host.out"), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", HOST_MODULE, "--workspace", str(self.workspace), "--port", str(self.port),
                 *(arg for name, port in sorted(self.endpoint_ports.items())
                   for arg in ("--endpoint-port", f"{name}={port}"))],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,  # outlives the CLI
                env={**os.environ, **self.store_env},
                umask=0o077)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.workspace / "logs" / "host.out").read_text(errors="replace").strip().splitlines()[-3:]
                raise WorkspaceError(f"the endpoint host exited at start (code {proc.returncode}): "
                                     f"{' | '.join(tail)}")
            info = self.info()
            if info is not None and info.pid == proc.pid:
                return info
            time.sleep(0.05)
        proc.kill()
        raise WorkspaceError(f"the endpoint host did not start within {START_TIMEOUT_S} s; "
                             f"see {self.workspace / 'logs' / 'host.log'}")

    def stop(self, timeout: float = 30.0) -> int | None:
        self._known = None
        info = self.info()
        if info is None:
            return None
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
        return info.pid

    def _exchange(self, info: HostInfo, method: str, path: str, payload: bytes | None, headers: dict[str, str],
                  timeout: float) -> tuple[int, str | None, bytes]:
        """One HTTP round trip to the host: status, the deployment that answered, body."""
        conn = http.client.HTTPConnection("127.0.0.1", info.port, timeout=timeout)
        try:
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("azureml-model-deployment"), resp.read()
        finally:
            conn.close()

    def _request(self, info: HostInfo, method: str, path: str, body: Any,
                 timeout: float = ADMIN_TIMEOUT_S) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        status, _, data = self._exchange(info, method, path, payload, {
            "x-mlops-admin-token": info.token, "content-type": "application/json"}, timeout)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")

    def score(self, endpoint: str, body: bytes, key: str | None, deployment: str | None) -> tuple[int, str | None, str]:
        """Send a scoring request as a client would (starting the host if needed)."""
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        if deployment:
            headers["azureml-model-deployment"] = deployment
        status, served_by, data = self._exchange(self.ensure_started(), "POST", f"/endpoints/{endpoint}/score",
                                                 body, headers, timeout=300)
        return status, served_by, data.decode(errors="replace")

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        info = self.ensure_started()
        try:
            status, data = self._request(info, method, path, body)
        except ConnectionRefusedError:  # the host this process knew is gone (stopped, restarted): find it again
            self._known = None
            try:
                status, data = self._request(self.ensure_started(), method, path, body)
            except OSError as exc:
                raise WorkspaceError(f"the endpoint host did not answer {method} {path}: {exc}") from None
        except OSError as exc:
            raise WorkspaceError(f"the endpoint host did not answer {method} {path}: {exc}") from None
        if status >= 400:
            message = data.get("error") if isinstance(data, dict) else data
            raise WorkspaceError(str(message))
        return data

    # -- what it serves --------------------------------------------------------------------------

    def config(self) -> ServingConfig:
        return ServingConfig.load(self.config_path)

    def _stamp(self) -> tuple[int, int]:
        try:
            st = self.config_path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_ino)  # replaced atomically: a new inode on every write

    def _edit(self, change: Callable[[ServingConfig], object]) -> None:
        with self._config_lock:
            stamp = self._stamp()
            cached = self._config
            # what this process wrote last, unless another process replaced the file since: no re-read per change
            config = cached[1] if cached is not None and cached[0] == stamp else self.config()
            self._config = None  # until the change is saved
            change(config)
            config.save(self.config_path)
            self._config = (self._stamp(), config)

    def put_deployment(self, cfg: DeploymentConfig) -> None:
        with progress.task(f"starting deployment {cfg.key} (its workers load the model)"):
            self._admin("PUT", f"/-/admin/deployments/{cfg.endpoint}/{cfg.name}", asdict(cfg))
        self._edit(lambda c: c.deployments.__setitem__(cfg.key, cfg))

    def delete_deployment(self, endpoint: str, name: str) -> None:
        if self.info() is not None:
            self._admin("DELETE", f"/-/admin/deployments/{endpoint}/{name}")
        self._edit(lambda c: c.deployments.pop(f"{endpoint}/{name}", None))

    def put_endpoint(self, cfg: EndpointConfig) -> None:
        self._admin("PUT", f"/-/admin/endpoints/{cfg.name}", asdict(cfg))
        self._edit(lambda c: c.endpoints.__setitem__(cfg.name, cfg))

    def delete_endpoint(self, name: str) -> None:
        if self.info() is not None:
            self._admin("DELETE", f"/-/admin/endpoints/{name}")

        def drop(config: ServingConfig) -> None:
            config.endpoints.pop(name, None)
            for key in [k for k in config.deployments if k.startswith(name + "/")]:
                config.deployments.pop(key)

        self._edit(drop)

    def status(self) -> dict[str, Any] | None:
        info = self.info()
        if info is None:
            return None
        _, data = self._request(info, "GET", "/-/admin/status", None, timeout=10)
        return data if isinstance(data, dict) else None


def materialise(files: list[tuple[str, str]], source: Callable[[str], Path], dest: Path) -> Path:
    """Lay out (relative path, sha256) files from the store under dest, once (hard links when possible)."""
    if (dest / ".complete").exists():
        return dest
    staging = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex}")  # deployments materialise in parallel
    shutil.rmtree(staging, ignore_errors=True)
    for rel, digest in files:
        target = safe_join(staging, rel, what="file")
        ensure_dir(target.parent)
        try:
            os.link(source(digest), target)
        except OSError:
            copy_private(source(digest), target)
    ensure_dir(staging)
    write_private(staging / ".complete", "")
    ensure_dir(dest.parent)
    try:
        os.rename(staging, dest)
    except OSError:  # another apply laid it out first
        shutil.rmtree(staging, ignore_errors=True)
    return dest
