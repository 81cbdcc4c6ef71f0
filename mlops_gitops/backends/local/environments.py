"""Where a deployment's or a step's environment comes from, and its interpreter in the process runtime.

An environment is named by reference (a registered `azureml:name:version`) or written inline; its
packages come from a conda file's `pip:` list, a build context's requirements.txt, or an image.
Files are read from the tree when the environment is not applied yet (`job run` before `apply`),
otherwise from the content-addressed store.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.serving import materialise
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.runtime.envs import (
    EnvironmentError_,
    ResolvedEnv,
    conda_mapping,
    ensure_env,
    resolve_conda,
    resolve_requirements,
)
from mlops_gitops.state import ArtifactFile, DesiredResource


@dataclass
class EnvSource:
    label: str
    resolved: ResolvedEnv | None = None  # pip requirements (conda file or requirements.txt)
    image: str | None = None
    context: Path | None = None  # a Docker build context, materialised (not in a plan preview)
    context_digest: str | None = None  # what the context holds, known without laying it out
    inference_config: dict[str, Any] | None = None  # a serving image's routes: the image runs as it is

    @property
    def key(self) -> str:
        """What identifies the environment for reuse: its packages, else its build context, else its image."""
        if self.resolved is not None:
            return self.resolved.digest
        if self.context_digest is not None:
            return f"context:{self.context_digest}"
        return f"image:{self.image}" if self.image else "host"


def under(files: Sequence[ArtifactFile], prefix: str) -> list[tuple[str, str]]:
    return [(f.rel[len(prefix):], f.sha256) for f in files if f.rel.startswith(prefix)]


class EnvResolver:
    def __init__(self, store: LocalStore, hooks: Hooks, pending: dict[Address, DesiredResource] | None = None,
                 preview: bool = False) -> None:
        self.store = store
        self.hooks = hooks
        self.pending = pending or {}  # resources of the tree not applied yet
        self.preview = preview  # plan: describe environments without writing anything

    def reader(self, files: Sequence[ArtifactFile]) -> Callable[[str], Path]:
        local = {f.sha256: f.source for f in files if f.source is not None}
        return lambda digest: local.get(digest) or self.store.artifact_path(digest)

    def lookup(self, address: Address) -> tuple[dict[str, Any], list[ArtifactFile], dict[str, str]] | None:
        """Spec, files and resolved references of a resource: the workspace's, else the tree's."""
        row = self.store.get(address)
        if row is not None:
            return row.spec, list(row.files), row.derived.get("refs") or {}
        pending = self.pending.get(address)
        if pending is not None:
            return pending.spec, list(pending.artifacts), pending.derived.get("refs") or {}
        return None

    def source(self, env: Any, ref: str | None, files: Sequence[ArtifactFile], prefix: str,
               here: Path) -> EnvSource | None:
        """`env` as written (inline dict or reference), `ref` its resolved name:version if a reference."""
        if ref is not None:
            env_name, _, env_version = ref.partition(":")
            found = self.lookup(Address(Kind.ENVIRONMENT, env_name, env_version))
            if found is None and isinstance(env, str) and env.startswith("azureml:AzureML-"):
                return _curated(env)  # Azure's curated environment, not one of the workspace
            if found is None:
                raise WorkspaceError(f"environment {ref} is not registered in the workspace")
            spec, env_files, env_prefix, label = found[0], found[1], "", f"environment {ref}"
        elif isinstance(env, dict):
            spec, env_files, env_prefix, label = env, list(files), prefix, "the inline environment"
        elif isinstance(env, str) and env.startswith("azureml:"):
            return _curated(env)
        else:
            return None  # no environment named: the host's Python
        read = self.reader(env_files)
        source = EnvSource(label, image=spec.get("image"), inference_config=spec.get("inference_config") or None)
        conda = spec.get("conda_file")
        try:
            if isinstance(conda, dict):
                source.resolved = resolve_conda(conda)
            elif isinstance(conda, str):
                found_conda = under(env_files, f"{env_prefix}conda_file/")
                if not found_conda:
                    raise WorkspaceError(f"{label}: its conda file was not stored")
                source.resolved = resolve_conda(conda_mapping(read(found_conda[0][1]).read_text(), "its conda file"))
            elif spec.get("build"):
                context = under(env_files, f"{env_prefix}build.path/")
                source.context_digest = hashlib.sha256(json.dumps(sorted(context)).encode()).hexdigest()[:24]
                if not self.preview:
                    source.context = materialise(context, read, here / "environment")
                names = dict(context)
                digest = names.get("requirements.txt")
                conda_name = next((n for n in CONTEXT_CONDA_FILES if n in names), None)
                if digest is not None:
                    source.resolved = resolve_requirements(read(digest).read_text())
                elif conda_name is not None:  # the context's conda file, as its Dockerfile would use it
                    source.resolved = resolve_conda(conda_mapping(read(names[conda_name]).read_text(), conda_name))
        except EnvironmentError_ as exc:
            raise WorkspaceError(f"{label}: {exc}") from None
        return source

    def python(self, env: EnvSource | None) -> str:
        """The process runtime: the interpreter of the environment's virtual environment."""
        if env is None:
            return sys.executable
        if env.resolved is None and env.context_digest:
            raise WorkspaceError(f"{env.label} is built from a Docker context without a requirements.txt or conda "
                                 "file: it needs the container runtime (runtime: container in mlops.yaml)")
        if env.resolved is None:  # an image alone (Azure's base images carry Python and nothing else)
            env.resolved = ResolvedEnv((), None)
            self.hooks.note(f"  {env.label} names only an image ({env.image}): the process runtime runs it in a "
                            "bare virtual environment on the local Python (runtime: container runs the image)")
        resolved = env.resolved

        def built() -> None:
            self.hooks.emit("environment.built", env.label, {
                "digest": resolved.digest, "requirements": list(resolved.requirements),
                "skipped": list(resolved.skipped)})

        try:
            return str(ensure_env(self.store.path / "envs", resolved, log=self.hooks.note, label=env.label,
                                  built=built))
        except EnvironmentError_ as exc:
            raise WorkspaceError(f"{env.label}: {exc}") from None


# conda files a Docker build context may carry (Azure's curated contexts use conda_dependencies.yaml)
CONTEXT_CONDA_FILES = ("conda_dependencies.yaml", "conda_dependencies.yml", "conda.yaml", "conda.yml",
                       "environment.yml", "environment.yaml")


def _curated(reference: str) -> EnvSource:
    """A curated Azure ML environment, built from its published conda specification."""
    from mlops_gitops.runtime.curated import CuratedError, lookup

    try:
        found = lookup(reference)
    except CuratedError as exc:
        raise WorkspaceError(str(exc)) from None
    if found is None:
        raise WorkspaceError(f"environment {reference} is neither registered in the workspace nor a curated Azure ML "
                             "environment")
    source = EnvSource(f"curated environment {found.name}")
    source.resolved = replace(resolve_conda(found.conda), relax=True)
    return source

