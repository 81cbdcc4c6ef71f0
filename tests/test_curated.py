"""Azure ML's curated environments resolve to their published packages (curated_environments.json), build
like any conda file, relax pins made for another Python, and are refused clearly when they cannot run here."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.runtime.curated import CuratedError, curated_name, known, lookup
from mlops_gitops.runtime.envs import ResolvedEnv, ensure_env
from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]
TABLE = json.loads((Path(__file__).resolve().parents[1] / "mlops_gitops" / "runtime" /
                    "curated_environments.json").read_text())


def test_the_table_notes_where_each_environment_was_published() -> None:
    assert TABLE["source"] == "https://github.com/Azure/azureml-assets"
    for name, entry in TABLE["environments"].items():
        assert len(entry["commit"]) == 40 and entry["path"].startswith("assets/"), name
        assert entry["conda"]["dependencies"], name


@pytest.mark.parametrize("reference", [
    "azureml:AzureML-sklearn-1.5@latest", "azureml:AzureML-sklearn-1.5:3",
    "azureml://registries/azureml/environments/sklearn-1.5/versions/12",
    "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
    "azureml://registries/azureml/environments/sklearn-1.5",
])
def test_every_form_of_reference_names_the_same_environment(reference: str) -> None:
    found = lookup(reference)
    assert found is not None and found.name == "sklearn-1.5"
    assert "assets/training/general/environments/sklearn-1.5" in found.source


def test_packages_come_from_the_published_conda_file_with_azure_placeholders_resolved() -> None:
    found = lookup("azureml:AzureML-minimal-ubuntu22.04-py311-cpu-inference@latest")
    assert found is not None
    pip = next(d["pip"] for d in found.conda["dependencies"] if isinstance(d, dict))
    assert "azureml-inference-server-http" in pip, "{{latest-pypi-version}}: the newest release"
    assert "numpy==1.26.4" in pip, "a conda-style pin in a pip list means an exact version"
    assert not any("{{" in str(p) for p in pip)


def test_earlier_names_with_their_platform_name_the_same_environment() -> None:
    found = lookup("azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:3")  # the name Azure's examples use
    assert found is not None and found.name == "sklearn-1.0"
    with pytest.raises(CuratedError, match="retired"):
        lookup("azureml:AzureML-sklearn-0.24-ubuntu18.04-py37-cpu@latest")


def test_the_dockerfile_pins_replace_the_conda_file_pins_of_the_same_package() -> None:
    entry = TABLE["environments"]["sklearn-1.0"]
    overridden = {p.split("<")[0].split("=")[0].split(">")[0] for p in entry.get("dockerfile_pip") or []}
    found = lookup("azureml:AzureML-sklearn-1.0@latest")
    assert found is not None
    pip = next(d["pip"] for d in found.conda["dependencies"] if isinstance(d, dict))
    for name in overridden:  # each package once, with the Dockerfile's pin (installed after the conda file)
        pins = [p for p in pip if p.split("<")[0].split("=")[0].split(">")[0].strip() == name]
        assert pins == [next(e for e in entry["dockerfile_pip"] if e.startswith(name))], (name, pins)


def test_gpu_unknown_and_unlisted_environments_are_clear_errors() -> None:
    gpu = TABLE["gpu_only"][0]
    with pytest.raises(CuratedError, match="GPU-only"):
        lookup(f"azureml:AzureML-{gpu}@latest")
    with pytest.raises(CuratedError, match="not a curated environment known") as unknown:
        lookup("azureml://registries/azureml/environments/no-such-env/labels/latest")
    assert "sklearn-1.5" in str(unknown.value), "the message lists what is known"
    assert lookup("azureml:my-own-env@latest") is None and curated_name("azureml:my-own-env:1") is None
    assert "sklearn-1.5" in known()


def test_validate_reports_what_cannot_run_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    gpu = TABLE["gpu_only"][0]
    for name, env in {"ok": "azureml:AzureML-sklearn-1.5@latest", "gpu": f"azureml:AzureML-{gpu}@latest",
                      "unknown": "azureml://registries/azureml/environments/nope/labels/latest"}.items():
        write(tmp_path / "jobs" / f"{name}.yml", f"$schema: {AZ}/commandJob.schema.json\nname: {name}\n"
                                                 f"command: python -V\nenvironment: {env}\n")
    init_repo(tmp_path, "Jobs on curated environments")
    res = cli("validate", str(tmp_path))
    assert res.code == 1
    lines = [line for line in (res.out + res.err).splitlines() if "REF006" in line]
    assert len(lines) == 2, res.out + res.err
    assert any(line.startswith("jobs/gpu.yml:4:") and "GPU-only" in line for line in lines)
    assert any(line.startswith("jobs/unknown.yml:4:") and "not a curated environment" in line for line in lines)


@pytest.mark.slow
def test_pins_without_a_wheel_for_this_python_are_relaxed_to_the_nearest_release(tmp_path: Path) -> None:
    said: list[str] = []
    resolved = ResolvedEnv(("pyyaml==5.4.1",), None, relax=True)  # 5.4.1 has no wheel for Python 3.11+
    python = ensure_env(tmp_path / "envs", resolved, log=said.append, label="curated environment demo")
    version = subprocess.run([str(python), "-c", "import yaml; print(yaml.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version.split(".")[0] == "6"
    assert any("nearest releases" in line and "pyyaml==5.4.1 ->" in line for line in said), said
    assert json.loads((python.parent.parent / "requirements.json").read_text()) == [f"pyyaml=={version}"]


@pytest.mark.slow
def test_a_job_naming_a_curated_environment_with_a_version_runs_in_it(cli: Cli, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    write(tmp_path / "jobs" / "hello.yml", f"$schema: {AZ}/commandJob.schema.json\n"
                                           "command: python -c \"import azureml_inference_server_http; print('in')\"\n"
                                           "environment: azureml:AzureML-minimal-ubuntu22.04-py311-cpu-inference:3\n")
    init_repo(tmp_path, "A job on a curated environment, by name and version as Azure's examples write it")
    res = cli("job", "run", "jobs/hello.yml", cwd=tmp_path)
    assert res.code == 0, res.err
    assert "curated environment minimal-ubuntu22.04-py311-cpu-inference" in res.err + res.out
    runs = json.loads(cli("job", "list", "--format", "json", cwd=tmp_path).out)
    assert "in\n" in cli("job", "logs", runs[0]["id"], cwd=tmp_path).out
