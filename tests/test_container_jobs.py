"""Job steps under `runtime: container`, in images a real engine (Podman's Docker API) runs: an
image-only environment (the workspace's base_image in place of an image that cannot be pulled), a
Docker build context, and a conda file installed on top of an image."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import AZ, REPO_ROOT, Result, init_repo, write

pytestmark = [pytest.mark.slow, pytest.mark.container]
Cli = Callable[..., Result]
BASE = "mlops-gitops-base:bookworm"


@pytest.fixture(scope="session")
def docker_host() -> str:
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "ensure-podman.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, f"scripts/ensure-podman.sh failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1].partition("=")[2]


def test_steps_run_in_their_environments_images(cli: Cli, tmp_path: Path, docker_host: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.delenv("MLOPS_GITOPS_RUNTIME", raising=False)
    root = tmp_path / "repo"
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: container, "
                               f"base_image: '{BASE}'}}\ndefault_workspace: dev\n")
    write(root / "docker" / "Dockerfile", f"FROM {BASE}\nRUN echo built-from-context > /marker.txt\n")
    write(root / "conda.yml", "name: small\ndependencies:\n  - python=3.11\n  - pip:\n    - six==1.16.0\n")
    write(root / "pipeline.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
name: in-images
jobs:
  azure_image:
    command: >-
      cat /etc/debian_version > ${{{{outputs.out}}}}/version.txt
      && echo "prefix $(python3 -c 'import sys; print(sys.prefix)')"
    environment: {{image: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest'}}
    outputs: {{out: {{type: uri_folder}}}}
  context:
    command: cat /marker.txt && cat ${{{{inputs.v}}}}/version.txt
    environment: {{build: {{path: ./docker}}}}
    inputs:
      v: ${{{{parent.jobs.azure_image.outputs.out}}}}
  conda:
    command: python -c "import six, sys; print('six', six.__version__, sys.prefix)"
    environment: {{image: '{BASE}', conda_file: ./conda.yml}}
""")
    init_repo(root, "Steps in images")
    res = cli("job", "run", "pipeline.yml", cwd=root)
    assert res.code == 0, res.err
    assert "replaced by the workspace's base_image" in res.err + res.out
    runs = json.loads(cli("job", "list", "--format", "json", cwd=root).out)

    def log(step: str) -> str:
        return cli("job", "logs", runs[0]["id"], "--step", step, cwd=root).out

    assert "prefix /usr" in log("azure_image")  # the image's own Python, not a virtual environment of the host
    context = log("context")
    assert "built-from-context" in context and "12." in context  # bookworm's version, via the upstream output
    assert "six 1.16.0 /opt/mlops-gitops-env" in log("conda")
    # the images are kept: an unchanged rerun reuses the steps, a forced one builds nothing again
    res = cli("job", "run", "pipeline.yml", "--force-rerun", cwd=root)
    assert res.code == 0 and "building" not in res.err + res.out
