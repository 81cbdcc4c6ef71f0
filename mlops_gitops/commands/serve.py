"""`mlops-gitops serve [--stop]`: start (or stop) the workspace's endpoint host in the background."""

from __future__ import annotations

from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.backends.local.serving import ServingController
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError


def controller_of(name: str, backend: LocalBackend) -> ServingController:
    deployer = backend.deployer
    if deployer is None:
        raise ConfigError(f"workspace '{name}' has runtime: none; it records endpoints without serving them")
    return deployer.controller


def controller_for(path: str, workspace: str | None) -> tuple[str, ServingController]:
    with workspace_backend(open_project(path), workspace) as (name, backend):
        return name, controller_of(name, backend)


def serve(path: str = ".", workspace: str | None = None, stop: bool = False) -> int:
    name, controller = controller_for(path, workspace)
    if stop:
        pid = controller.stop()
        out(f"Stopped the endpoint host of workspace '{name}' (pid {pid})." if pid else
            f"The endpoint host of workspace '{name}' was not running.")
        return EXIT_OK
    info = controller.ensure_started()
    served = controller.config()
    out(f"Endpoint host of workspace '{name}': {info.url} (pid {info.pid})")
    for endpoint in sorted(served.endpoints):
        out(f"  {info.url}/endpoints/{endpoint}/score")
    out("Stop it with: mlops-gitops serve --stop")
    return EXIT_OK
