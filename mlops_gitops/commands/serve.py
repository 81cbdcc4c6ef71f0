"""`mlops-gitops serve [--stop]`: start (or stop) the workspace's endpoint host in the background."""

from __future__ import annotations

import argparse

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.commands.endpoint import serving_of


def serve(path: str = ".", workspace: str | None = None, stop: bool = False) -> int:
    with workspace_backend(open_project(path), workspace) as (name, backend):
        serving = serving_of(name, backend)
        if stop:
            pid = serving.stop()
            out(f"Stopped the endpoint host of workspace '{name}' (pid {pid})." if pid else
                f"The endpoint host of workspace '{name}' was not running.")
            return EXIT_OK
        info = serving.start()
        endpoints = serving.served_endpoints()
    out(f"Endpoint host of workspace '{name}': {info.url} (pid {info.pid})")
    for endpoint in endpoints:
        out(f"  {info.url}/endpoints/{endpoint}/score")
    out("Stop it with: mlops-gitops serve --stop")
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stop", action="store_true")
    args.workspace(p)
    p.set_defaults(run=serve)
