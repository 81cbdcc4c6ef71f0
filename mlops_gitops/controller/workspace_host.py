"""The endpoint host of a workspace: the serving host (runtime/serving/host.py) with batch jobs and schedules.

The serving host alone knows nothing of the workspace's records (it also runs inside images); started
for a workspace, it is given the gateway that starts batch jobs through Azure's REST invocation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlops_gitops.backends.local.locations import ARTIFACTS_VARIABLE, DATABASE_VARIABLE
from mlops_gitops.controller import figures_loop, schedule_loop
from mlops_gitops.controller.batch_gateway import WorkspaceBatchGateway
from mlops_gitops.runtime.serving import host


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    workspace = Path(argv[argv.index("--workspace") + 1]).resolve() if "--workspace" in argv else Path.cwd()
    database, artifacts = os.environ.get(DATABASE_VARIABLE) or None, os.environ.get(ARTIFACTS_VARIABLE) or None
    gateway = WorkspaceBatchGateway(workspace, database, artifacts)
    schedule_loop.start(workspace, database, artifacts)  # the host lives with the workspace: it fires schedules
    return host.main(argv, batch=gateway,
                     on_state=lambda state, port: figures_loop.start(workspace, database, state, port))


if __name__ == "__main__":
    raise SystemExit(main())
