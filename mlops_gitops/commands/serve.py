"""`mlops-gitops serve [--stop | --follow]`: start (or stop) the workspace's endpoint host in the background, or
run it in the foreground, converging to the shared workspace as applies from CI change it."""

from __future__ import annotations

import argparse
import signal
import threading

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, err, open_project, out, workspace_backend
from mlops_gitops.commands.endpoint import serving_of
from mlops_gitops.errors import ConfigError


def serve(path: str = ".", workspace: str | None = None, stop: bool = False, follow: bool = False,
          interval: float = 1.0, host_id: str | None = None) -> int:
    if follow:
        return serve_follow(path, workspace, interval, host_id)
    with workspace_backend(open_project(path), workspace) as (name, backend):
        serving = serving_of(name, backend)
        if stop:
            pid = serving.stop()
            out(f"Stopped the endpoint host of workspace '{name}' (pid {pid})." if pid else
                f"The endpoint host of workspace '{name}' was not running.")
            return EXIT_OK
        if serving.by_hosts:
            raise ConfigError(f"workspace '{name}' has serving: hosts: its endpoints are served by hosts that "
                              "follow it; run `mlops-gitops serve --follow` here to be one")
        info = serving.start()
        endpoints = serving.served_endpoints()
    out(f"Endpoint host of workspace '{name}': {info.url} (pid {info.pid})")
    for endpoint in endpoints:
        out(f"  {info.url}/endpoints/{endpoint}/score")
    out("Stop it with: mlops-gitops serve --stop")
    return EXIT_OK


def serve_follow(path: str, workspace: str | None, interval: float, host_id: str | None,
                 stop: threading.Event | None = None) -> int:
    """Run in the foreground until SIGTERM or SIGINT (or `stop`), converging this machine's host."""
    from mlops_gitops.controller.follow import default_host_id, follow

    project = open_project(path)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    with workspace_backend(project, workspace) as (name, backend):
        serving = serving_of(name, backend)
        if not serving.by_hosts:
            err(f"Note: workspace '{name}' has serving: apply, so applies also drive this machine's host; set "
                "`serving: hosts` in mlops.yaml where CI applies and long-lived servers follow")
        follow(backend, serving, host_id or default_host_id(str(project.root)), stop, interval, log=out)
    out("Stopped following; the endpoint host is stopped.")
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stop", action="store_true", help="stop the workspace's endpoint host instead")
    p.add_argument("--follow", action="store_true",
                   help="run in the foreground and converge to the workspace as applies (from anywhere) change it")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls of the state serial (--follow)")
    p.add_argument("--host-id", help="how this host is named in `endpoint show` (default: hostname:repository)")
    args.workspace(p)
    args.examples(p, "mlops-gitops serve -C example-repo", "mlops-gitops serve --stop -C example-repo")
    p.set_defaults(run=serve)
