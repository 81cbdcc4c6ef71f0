"""Assets made by a job of the tree (`path: azureml://jobs/<job>/outputs/<output>`): their files, content
and version come from the job's latest completed run."""

from __future__ import annotations

from dataclasses import replace

from mlops_gitops import versioning
from mlops_gitops.addresses import Address
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.hashing import content_summary, spec_hash, versioned_content
from mlops_gitops.spec.references import JobOutputRef
from mlops_gitops.state import ActualResource, ArtifactFile, DesiredResource, run_output_files


def from_latest_run(store: LocalStore, desired: DesiredResource,
                    ref: JobOutputRef) -> tuple[DesiredResource | ActualResource, str]:
    """The asset as the latest run made it: an existing version when the run reproduced its files."""
    run_id, files = run_output_files(store.job_outputs(ref.job), ref.job, ref.output, ref.subpath)
    if run_id is None:
        where = f"output '{ref.output}'" + (f" path '{ref.subpath}'" if ref.subpath else "")
        raise WorkspaceError(f"job '{ref.job}' has no completed run with {where} (run it: mlops-gitops job run)")
    paths = {"path": content_summary([(f.rel, f.sha256, f.size) for f in files], True)}
    derived = {**desired.derived, "paths": paths}
    content = versioned_content(desired.spec, derived)
    kind, name = desired.address.kind, desired.address.name
    snapshot = store.read()
    same = versioning.same_content(snapshot, kind, name, content, latest_only=False)
    if same is not None and desired.auto_version:
        return same, run_id
    version = desired.address.version or "1"
    taken = snapshot.resources.get(Address(kind, name, version))
    if taken is not None and taken.content_hash != content:
        if not desired.auto_version:
            raise WorkspaceError(f"{desired.address} exists with other files; run {run_id} produced new ones: "
                                 "bump the version (or remove 'version' to number it automatically)")
        version = versioning.next_version(snapshot, kind, name)
    spec = {**desired.spec, "version": version}
    return replace(desired, address=Address(kind, name, version), spec=spec, derived=derived,
                   content_hash=content, spec_hash=spec_hash({"spec": spec, "derived": derived}),
                   artifacts=[ArtifactFile(f.rel, f.sha256, f.size) for f in files]), run_id
