"""The endpoint host process: `python -m mlops_gitops.runtime.serving.host --workspace DIR`.

It serves what <workspace>/serving.json describes, writes <workspace>/host.json (pid, port, admin token)
once it listens, logs to <workspace>/logs/host.log (or, with --log-stderr as in an image, to stderr),
and stops on SIGTERM after in-flight requests finish. MLOPS_GITOPS_ENDPOINT_KEYS=k1,k2 makes every
endpoint require one of those keys (how a packaged image is given keys without baking them in).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from mlops_gitops.fsutil import ensure_dir, open_private
from mlops_gitops.runtime.serving.app import HostApp
from mlops_gitops.runtime.serving.batch_routes import BatchGateway
from mlops_gitops.runtime.serving.config import ServingConfig
from mlops_gitops.runtime.serving.host_state import HostState
from mlops_gitops.runtime.serving.protocol import Limits, guarded_protocol


def write_info(workspace: Path, port: int, token: str) -> None:
    info = {"pid": os.getpid(), "port": port, "admin_token": token, "url": f"http://127.0.0.1:{port}"}
    tmp = workspace / "host.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the admin token is a secret
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(tmp, workspace / "host.json")


def _watch_workspace(workspace: Path, server: uvicorn.Server, every_s: float = 2.0) -> None:
    """Stop serving once the workspace folder is gone: its keys, models and configuration went with it."""
    marker = workspace.stat().st_ino
    while not server.should_exit:
        time.sleep(every_s)
        try:
            gone = workspace.stat().st_ino != marker  # deleted, or replaced by another folder
        except FileNotFoundError:
            gone = True
        if gone:
            logging.getLogger("mlops_gitops.host").warning("workspace %s is gone: stopping", workspace)
            server.should_exit = True
            return


def main(argv: list[str] | None = None, batch: BatchGateway | None = None,
         on_state: Callable[[HostState, int], None] | None = None) -> int:
    """`on_state`: given the host's state and port once it listens (a workspace host records its figures)."""
    parser = argparse.ArgumentParser(prog="mlops-gitops-host")
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-stderr", action="store_true", help="log to stderr instead of files")
    parser.add_argument("--endpoint-port", action="append", default=[], metavar="ENDPOINT=PORT",
                        help="also serve ENDPOINT on a port of its own (Triton's routes with its models' names)")
    args = parser.parse_args(argv)
    workspace: Path = args.workspace.resolve()
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if args.log_stderr:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=log_format)
    else:
        ensure_dir(workspace / "logs")
        os.close(open_private(workspace / "logs" / "host.log"))  # 0600 before logging appends to it
        logging.basicConfig(filename=workspace / "logs" / "host.log", level=logging.INFO, format=log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per readiness poll or forwarded request
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    sock.listen(2048)  # listening before host.json names the port: early clients wait in the backlog
    port = sock.getsockname()[1]
    sockets, endpoint_ports = [sock], {}
    for pair in args.endpoint_port:
        name, _, wanted = pair.partition("=")
        extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        extra.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            extra.bind((args.host, int(wanted)))
        except (OSError, ValueError) as exc:
            print(f"cannot listen on {args.host}:{wanted} for endpoint {name}: {exc}", file=sys.stderr)
            return 1
        extra.listen(2048)
        sockets.append(extra)
        endpoint_ports[extra.getsockname()[1]] = name
    token = secrets.token_urlsafe(32)
    state = HostState(workspace, log_files=not args.log_stderr)
    if on_state is not None:
        on_state(state, port)
    initial = ServingConfig.load(workspace / "serving.json")
    keys = [k for k in os.environ.get("MLOPS_GITOPS_ENDPOINT_KEYS", "").split(",") if k]
    if keys:
        for endpoint in initial.endpoints.values():
            endpoint.auth_mode, endpoint.keys = "key", keys
    metrics_key = os.environ.get("MLOPS_GITOPS_METRICS_KEY") or initial.metrics_key
    limits = Limits.from_environment()
    app = HostApp(state, token, on_started=lambda: write_info(workspace, port, token), initial=initial,
                  metrics_key=metrics_key, body_timeout_s=limits.body_timeout_s, batch=batch,
                  endpoint_ports=endpoint_ports)
    config = uvicorn.Config(app, loop="uvloop", http=guarded_protocol(limits), lifespan="on", log_level="warning",
                            access_log=False, proxy_headers=False, server_header=False, date_header=False,
                            timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    logging.getLogger("mlops_gitops.host").info("listening on %s:%d (pid %d)", args.host, port, os.getpid())
    if not args.log_stderr:  # a workspace host (not an image): it lives only as long as its workspace folder
        threading.Thread(target=_watch_workspace, args=(workspace, server), daemon=True).start()
    server.run(sockets=sockets)
    (workspace / "host.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
