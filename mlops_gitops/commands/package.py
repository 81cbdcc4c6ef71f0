"""`mlops-gitops package ENDPOINT/DEPLOYMENT --tag IMAGE`: a deployment of the workspace as an OCI image."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, err, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, WorkspaceError
from mlops_gitops.imageref import is_image_reference
from mlops_gitops.runtime.containers import ContainerError, Engine
from mlops_gitops.runtime.packaging import build_image, copy_context


def package(target: str, tag: str | None = None, path: str = ".", workspace: str | None = None,
            base_image: str | None = None, output: str | None = None) -> int:
    endpoint, sep, name = target.partition("/")
    if not sep or not endpoint or not name:
        raise ConfigError(f"'{target}' is not ENDPOINT/DEPLOYMENT")
    for flag, value in (("--base-image", base_image), ("--tag", tag)):
        if value is not None and not is_image_reference(value):
            raise ConfigError(f"{flag} {value!r} is not a container image reference ([registry/]name[:tag])")
    project = open_project(path)
    with workspace_backend(project, workspace) as (ws_name, backend):
        row = backend.get(Address(Kind.ONLINE_DEPLOYMENT, target))
        if row is None or row.status != "active":
            raise WorkspaceError(f"deployment {target} is not in workspace '{ws_name}'; apply the repository first")
        packager = backend.packager
        if packager is None:
            raise WorkspaceError(f"the {backend.name} backend does not package deployments as images")
        cfg, recipe = packager.recipe(row, base_image)
        try:
            if output is not None:
                digest = copy_context(recipe, Path(output), log=err)
                out(f"Wrote the build context of {target} to {output} (digest {digest[:16]}); build it with: "
                    f"docker build -t {tag or 'IMAGE'} {output}")
                _run_hint(tag or "IMAGE", cfg.environment_variables)
                return EXIT_OK
            engine = Engine.connect()
            image = build_image(engine, recipe, tag, log=err)
        except ContainerError as exc:
            raise WorkspaceError(str(exc)) from None
    out(f"Built {image} for {target}" + (f" (model {cfg.model_name}:{cfg.model_version})" if cfg.model_name else ""))
    _run_hint(image, cfg.environment_variables)
    out(f"Score:    curl -s -X POST localhost:8080/endpoints/{endpoint}/score -H 'content-type: application/json' "
        "-d @request.json")
    return EXIT_OK


def _run_hint(image: str, environment_variables: dict[str, str]) -> None:
    variables = "".join(f"-e {name}=… " for name in sorted(environment_variables))
    out(f"Run it:   docker run --rm -p 8080:8080 {variables}{image}   (or podman run …; add "
        "-e MLOPS_GITOPS_ENDPOINT_KEYS=KEY to require a key)")
    if variables:
        out("          the deployment's environment variables are not in the image: give them when it runs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="ENDPOINT/DEPLOYMENT", help="the online deployment to package, e.g. cancer/blue")
    p.add_argument("--tag", "-t", help="image name:tag (default mlops-gitops/ENDPOINT-DEPLOYMENT:DIGEST)")
    p.add_argument("--base-image", help="base image in place of the environment's (must provide python3 with venv)")
    p.add_argument("--output", "-o", metavar="DIR", help="write the build context (Dockerfile and files) to DIR "
                                                         "instead of building; needs no engine")
    args.workspace(p)
    args.examples(p, "mlops-gitops package cancer/green --tag cancer-green:1 -w containers -C example-repo",
                  "mlops-gitops package cancer/blue --output /tmp/cancer-blue -C example-repo   # no engine needed")
    p.set_defaults(run=package)
