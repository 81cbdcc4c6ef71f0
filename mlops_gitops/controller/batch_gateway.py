"""Batch jobs started through a workspace's endpoint host (Azure's REST invocation of a batch endpoint).

The host answers at once: the endpoint and deployment are checked and the key compared here, then the
job is started in a process of its own (controller/batch_launch.py) that records and runs it as
`batch invoke` would; `GET …/jobs/<id>` reads its record. Azure's batch endpoints take Microsoft Entra
tokens only; locally they take the endpoint's keys (`endpoint get-credentials NAME`) — a local
extension, which plan states.
"""

from __future__ import annotations

import hmac
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.locations import ARTIFACTS_VARIABLE, DATABASE_VARIABLE
from mlops_gitops.errors import GitOpsError, NotFoundError
from mlops_gitops.fsutil import ensure_dir, open_private, write_private
from mlops_gitops.runtime.remote import is_remote_input

if TYPE_CHECKING:  # the store (SQLAlchemy) is opened on the first batch call, not when the host starts
    from mlops_gitops.backends.local.store import LocalStore

STATUS = {"running": "Running", "completed": "Completed", "failed": "Failed", "cancelled": "Canceled",
          "interrupted": "Failed"}


def _quiet(_: str) -> None:
    pass


class WorkspaceBatchGateway:
    def __init__(self, workspace: Path, database: str | None = None, artifacts: str | None = None) -> None:
        self.workspace, self.database, self.artifacts = workspace, database, artifacts
        self._store: LocalStore | None = None
        self._lock = threading.Lock()

    def _opened(self) -> LocalStore:
        from mlops_gitops.backends.local.store import LocalStore

        with self._lock:
            if self._store is None:
                self._store = LocalStore(self.workspace, self.database, self.artifacts)
            return self._store

    def _authorised(self, endpoint: str, authorization: str | None) -> bool:
        given = (authorization or "").removeprefix("Bearer ").strip().encode()
        keys = self._opened().endpoint_keys(endpoint)
        return bool(given) and any(hmac.compare_digest(given, k.encode()) for k in keys)

    def start(self, endpoint: str, deployment: str | None, authorization: str | None,
              inputs: dict[str, dict[str, str]]) -> tuple[int, dict[str, Any]]:
        from mlops_gitops.backends.local.batch import BatchJobs, is_pipeline_deployment
        from mlops_gitops.backends.local.hooks import Hooks
        from mlops_gitops.backends.local.pipelines import new_run_id

        store = self._opened()
        jobs = BatchJobs(store, Hooks(note=_quiet, warn=_quiet, emit=lambda *a: None))
        if store.get(Address(Kind.BATCH_ENDPOINT, endpoint)) is None:
            return 404, {"message": f"batch endpoint '{endpoint}' does not exist in the workspace"}
        if not self._authorised(endpoint, authorization):
            return 401, {"message": "missing or wrong key: send 'Authorization: Bearer <key>' "
                                    f"(mlops-gitops endpoint get-credentials {endpoint})"}
        try:
            dep = jobs.deployment(endpoint, deployment)
        except GitOpsError as exc:
            return 404 if isinstance(exc, NotFoundError) else 400, {"message": str(exc)}
        local = [name for name, i in inputs.items() if i["type"].lower() != "literal" and
                 not (i["value"].startswith("azureml:") or is_remote_input(i["value"]))]
        if local:  # a key opens the endpoint, not this machine's files
            return 400, {"message": f"InputData.{local[0]}: a job started over REST reads a data asset "
                                    "(azureml:NAME:VERSION) or a URL (https://…, azureml://datastores/…), not a path "
                                    "on the host; `mlops-gitops batch invoke` scores local files"}
        pipeline = is_pipeline_deployment(dep.spec)
        if not pipeline and len(inputs) != 1:
            return 400, {"message": f"{dep.address} is a model deployment: it takes one input, not {len(inputs)}"}
        given = [f"{name}={i['value']}" if pipeline else i["value"] for name, i in inputs.items()]
        name = dep.address.name.partition("/")[2]
        run_id = new_run_id(endpoint)
        self._launch(endpoint, name, given, run_id)
        return 200, {"id": f"/jobs/{run_id}", "name": run_id,
                     "type": "Microsoft.MachineLearningServices/workspaces/jobs",
                     "properties": {"jobType": "Pipeline", "status": "Queued", "experimentName": endpoint,
                                    "properties": {"azureml.batchrun": "true", "azureml.deploymentname": name}}}

    def _launch(self, endpoint: str, deployment: str, given: list[str], run_id: str) -> None:
        logs = ensure_dir(self.workspace / "logs" / "batch")
        env = {**os.environ, DATABASE_VARIABLE: self.database or "", ARTIFACTS_VARIABLE: self.artifacts or ""}
        env.pop("MLOPS_GITOPS_PROGRESS", None)
        args = [sys.executable, "-m", "mlops_gitops.controller.batch_launch", "--workspace", str(self.workspace),
                "--endpoint", endpoint, "--deployment", deployment, "--run-id", run_id]
        for value in given:
            args += ["--input", value]
        with os.fdopen(open_private(logs / f"{run_id}.log"), "ab") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                    start_new_session=True, umask=0o077)  # outlives the request
        write_private(logs / f"{run_id}.pid", str(proc.pid))
        threading.Thread(target=proc.wait, daemon=True).start()  # reaped when it ends: no zombie to mistake

    def _unrecorded(self, endpoint: str, job_id: str) -> tuple[int, dict[str, Any]]:
        """A job the host started that has no record yet: queued while its process lives, else failed."""
        logs = self.workspace / "logs" / "batch"
        try:
            pid = int((logs / f"{job_id}.pid").read_text())
        except (OSError, ValueError):
            return 404, {"message": f"no job {job_id} of batch endpoint '{endpoint}'"}
        try:
            os.kill(pid, 0)
            return 200, {"name": job_id, "properties": {"status": "Queued", "experimentName": endpoint}}
        except ProcessLookupError:
            lines = (logs / f"{job_id}.log").read_text(errors="replace").strip().splitlines()
            return 200, {"name": job_id, "properties": {"status": "Failed", "experimentName": endpoint,
                                                        "error": lines[-1] if lines else "its process ended"}}
        except PermissionError:
            return 200, {"name": job_id, "properties": {"status": "Queued", "experimentName": endpoint}}

    def job(self, endpoint: str, job_id: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        from mlops_gitops.backends.local.runs import RunRecords

        store = self._opened()
        if store.get(Address(Kind.BATCH_ENDPOINT, endpoint)) is None:
            return 404, {"message": f"batch endpoint '{endpoint}' does not exist in the workspace"}
        if not self._authorised(endpoint, authorization):
            return 401, {"message": "missing or wrong key: send 'Authorization: Bearer <key>'"}
        records = RunRecords(store)
        try:
            run = records.get(job_id)
        except NotFoundError:
            return self._unrecorded(endpoint, job_id)
        if run.id != job_id or (run.snapshot.get("batch") or {}).get("endpoint") != endpoint:
            return 404, {"message": f"no job {job_id} of batch endpoint '{endpoint}'"}
        outputs = {port: {"sha256": o.get("sha256"), "files": len(o.get("files") or [])}
                   for port, o in run.outputs.items()}
        return 200, {"name": run.id, "properties": {
            "status": STATUS.get(run.status, run.status), "experimentName": endpoint, "startTime": run.started_at,
            "endTime": run.finished_at, "error": run.message or None, "outputs": outputs}}
