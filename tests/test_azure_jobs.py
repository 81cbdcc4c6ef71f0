"""Command and pipeline jobs run as Azure runs them: additional_includes beside the code, Azure's working
folders, environment_variables of any scalar type, continue_on_step_failure, image-only environments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]
pytestmark = pytest.mark.slow

IMAGE_ONLY = "environment: {image: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest'}\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['**/src/**', 'shared/**', 'libs/**']\n")
    return root


def show(cli: Cli, root: Path) -> dict[str, object]:
    runs = json.loads(cli("job", "list", "--format", "json", cwd=root).out)
    data: dict[str, object] = json.loads(cli("job", "show", runs[0]["id"], "--format", "json", cwd=root).out)
    return data


def statuses(info: dict[str, object]) -> dict[str, str]:
    return {s["step"]: s["status"] for s in info["steps"]}  # type: ignore[attr-defined,index]


def test_additional_includes_sit_beside_the_code_and_azure_folders_exist(repo: Path, cli: Cli) -> None:
    write(repo / "shared" / "utils.py", "GREETING = 'hello from utils'\n")
    write(repo / "libs" / "common" / "__init__.py", "")
    write(repo / "libs" / "common" / "helper.py", "def shout(s):\n    return s.upper()\n")
    write(repo / "components" / "src" / "main.py", """
import os, pathlib, sys
from utils import GREETING
from common.helper import shout
assert pathlib.Path("outputs").is_dir() and pathlib.Path("logs").is_dir(), "Azure's working folders"
assert os.environ["AZURE_ML_INPUT_times"] == "7", "inputs the command does not name are set too, as Azure sets them"
assert os.environ["AZURE_ML_OUTPUT_said"] == sys.argv[1] and os.environ["AZUREML_RUN_ID"]
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "said.txt").write_text(f"{shout(GREETING)} {os.environ['COUNT']} {os.environ['FLAG']} {os.environ['RATE']}")
(pathlib.Path("outputs") / "note.txt").write_text("written where Azure scripts write")
""")
    write(repo / "components" / "greet.yml", f"""$schema: {AZ}/commandComponent.schema.json
name: greet
type: command
code: ./src
additional_includes:
  - ../shared/utils.py
  - ../libs/common
{IMAGE_ONLY}inputs:
  times: {{type: integer, default: 7}}
outputs:
  said: {{type: uri_folder}}
command: python main.py ${{{{outputs.said}}}}
""")
    write(repo / "pipelines" / "p.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
name: greeting
jobs:
  greet:
    component: ../components/greet.yml
    environment_variables: {{COUNT: 3, FLAG: true, RATE: 0.5}}
""")
    init_repo(repo, "A component with additional includes")
    res = cli("job", "run", "pipelines/p.yml", cwd=repo)
    assert res.code == 0, res.out + res.err
    assert "names only an image" in res.err and "bare virtual environment" in res.err
    info = show(cli, repo)
    assert statuses(info) == {"greet": "completed"}
    said = next((repo / ".mlops" / "dev" / "runs").glob("*/greet/outputs/said/said.txt"))
    assert said.read_text() == "HELLO FROM UTILS 3 True 0.5"


def test_an_include_named_like_the_code_is_refused_as_azure_refuses_it(repo: Path, cli: Cli) -> None:
    write(repo / "shared" / "main.py", "print('the other main')\n")
    write(repo / "components" / "src" / "main.py", "print('main')\n")
    write(repo / "components" / "c.yml", f"$schema: {AZ}/commandComponent.schema.json\nname: c\ntype: command\n"
                                         f"code: ./src\nadditional_includes: [../shared/main.py]\n{IMAGE_ONLY}"
                                         "command: python main.py\n")
    write(repo / "pipelines" / "p.yml", f"$schema: {AZ}/pipelineJob.schema.json\ntype: pipeline\nname: clash\n"
                                        "jobs:\n  c: {component: ../components/c.yml}\n")
    init_repo(repo, "A clash")
    res = cli("job", "run", "pipelines/p.yml", cwd=repo)
    assert res.code == 1 and "named like a file or folder of the component's code (main.py)" in res.err, res.err
    assert "Traceback" not in res.err


@pytest.mark.parametrize(("setting", "b_status"), [("", "skipped"), ("settings: {continue_on_step_failure: true}\n",
                                                                      "completed")])
def test_continue_on_step_failure(repo: Path, cli: Cli, setting: str, b_status: str) -> None:
    write(repo / "pipelines" / "p.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
name: flaky
{setting}jobs:
  a: {{type: command, command: "exit 3", {IMAGE_ONLY.strip()}}}
  b: {{type: command, command: "echo b ran", {IMAGE_ONLY.strip()}}}
""")
    init_repo(repo, "Two independent steps")
    res = cli("job", "run", "pipelines/p.yml", "--parallelism", "1", cwd=repo)
    assert res.code == 1
    info = show(cli, repo)
    assert statuses(info) == {"a": "failed", "b": b_status}
    if b_status == "skipped":
        b = next(s for s in info["steps"] if s["step"] == "b")  # type: ignore[attr-defined]
        assert "continue_on_step_failure is false" in b["message"]


def test_job_run_is_not_blocked_by_errors_the_job_does_not_use(repo: Path, cli: Cli) -> None:
    write(repo / "jobs" / "train" / "job.yml", f"$schema: {AZ}/commandJob.schema.json\n"
                                               f"command: python -c \"print('trained')\"\n{IMAGE_ONLY}")
    # elsewhere: a deployment of a model nobody has registered yet, and a broken model file
    write(repo / "endpoints" / "ep.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: ep1\n"
                                         "auth_mode: key\n")
    write(repo / "endpoints" / "blue.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\n"
                                           "endpoint_name: ep1\nmodel: azureml:taxi-model@latest\n"
                                           "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    write(repo / "models" / "bad.yml", f"$schema: {AZ}/model.schema.json\nname: bad\npath: [1]\n")
    init_repo(repo, "A job beside files with errors")
    assert cli("plan", cwd=repo).code == 1  # plan and apply are still blocked
    res = cli("job", "run", "train/job.yml", cwd=repo / "jobs")  # FILE relative to the cwd
    assert res.code == 0, res.err
    assert "trained" in cli("job", "logs", show(cli, repo)["id"], cwd=repo).out
    assert "endpoints/blue.yml:4:" in res.err and "warning REF001" in res.err
    assert "models/bad.yml:3:" in res.err and "not used by this job" in res.err

    # an error in the job's own file (or what it uses) still stops it, naming the file and line
    write(repo / "jobs" / "train" / "job.yml", f"$schema: {AZ}/commandJob.schema.json\ncommand: [1]\n{IMAGE_ONLY}")
    res = cli("job", "run", "jobs/train/job.yml", cwd=repo)
    assert res.code == 1 and "jobs/train/job.yml:2:" in res.err and "nothing was run" in res.err
    assert "models/bad.yml" not in res.err
