"""The process that runs a batch job started through the endpoint host (see batch_gateway.py).

    python -m mlops_gitops.controller.batch_launch --workspace DIR --endpoint E --deployment D --run-id ID \\
        --input VALUE...

It runs the job as `batch invoke` does, under the ID the host answered with; a job refused here (an
input that cannot be read) is recorded as failed with the reason, so the client polling it learns why.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.backends.local.locations import ARTIFACTS_VARIABLE, DATABASE_VARIABLE
from mlops_gitops.errors import GitOpsError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="batch-launch")
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--deployment", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--input", dest="inputs", action="append", default=[])
    a = p.parse_args(argv)
    backend = LocalBackend(a.workspace, database=os.environ.get(DATABASE_VARIABLE) or None,
                           artifacts=os.environ.get(ARTIFACTS_VARIABLE) or None, runtime="process")
    try:
        result = backend.runs.invoke_batch(a.endpoint, a.inputs, a.deployment, run_id=a.run_id, record_refusal=True)
    except GitOpsError as exc:
        print(f"batch job {a.run_id}: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print(f"batch job {result.run_id} {result.status}" + (f": {result.message}" if result.message else ""))
    return 0 if result.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
