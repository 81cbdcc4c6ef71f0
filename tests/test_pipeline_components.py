"""Pipeline components: a pipeline step that runs one (its steps join the run as `step.inner`), and a
pipeline job that names one with `component:` instead of `jobs:`, as Azure's examples write them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import AZ, PROCESS_WORKSPACE, Result, init_repo, write

Cli = Callable[..., Result]
pytestmark = pytest.mark.slow
ENV = "environment: {image: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest'}\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    write(root / "mlops.yaml", PROCESS_WORKSPACE)
    write(root / "data" / "rows.csv", "a\n1\n2\n3\n")
    components = root / "components"
    write(components / "prep.yml", f"""$schema: {AZ}/commandComponent.schema.json
name: prep
inputs: {{raw: {{type: uri_file}}, scale: {{type: integer, default: 1}}}}
outputs: {{clean: {{type: uri_folder}}}}
command: >-
  echo "scale ${{{{inputs.scale}}}}" > ${{{{outputs.clean}}}}/info.txt
  && cat ${{{{inputs.raw}}}} >> ${{{{outputs.clean}}}}/info.txt
{ENV}""")
    write(components / "train.yml", f"""$schema: {AZ}/commandComponent.schema.json
name: train
inputs: {{data: {{type: uri_folder}}}}
outputs: {{model: {{type: uri_folder}}}}
command: cp ${{{{inputs.data}}}}/info.txt ${{{{outputs.model}}}}/lines.txt
{ENV}""")
    # Azure's uci-heart example names its pipeline component with hyphens: it is used by path (anonymous)
    write(components / "pipeline.yml", f"""$schema: {AZ}/pipelineComponent.schema.json
type: pipeline
name: uci-heart-train-pipeline
inputs:
  input_data: {{type: uri_file}}
  scale: {{type: integer, default: 2}}
outputs:
  model: {{type: uri_folder}}
jobs:
  preprocess_job:
    type: command
    component: ./prep.yml
    inputs:
      raw: ${{{{parent.inputs.input_data}}}}
      scale: ${{{{parent.inputs.scale}}}}
  train_job:
    type: command
    component: ./train.yml
    inputs:
      data: ${{{{parent.jobs.preprocess_job.outputs.clean}}}}
    outputs:
      model: ${{{{parent.outputs.model}}}}
""")
    return root


def steps_of(cli: Cli, root: Path) -> dict[str, str]:
    runs = json.loads(cli("job", "list", "--format", "json", cwd=root).out)
    info = json.loads(cli("job", "show", runs[0]["id"], "--format", "json", cwd=root).out)
    return {s["step"]: s["status"] for s in info["steps"]}


def test_a_pipeline_step_runs_the_steps_of_its_pipeline_component(repo: Path, cli: Cli) -> None:
    write(repo / "pipelines" / "outer.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
name: outer
inputs:
  rows: {{type: uri_file, path: ../data/rows.csv}}
outputs:
  final: {{type: uri_folder}}
jobs:
  training:
    type: pipeline
    component: ../components/pipeline.yml
    inputs:
      input_data: ${{{{parent.inputs.rows}}}}
      scale: 5
  report:
    type: command
    command: >-
      cp ${{{{inputs.model}}}}/lines.txt ${{{{outputs.final}}}}/report.txt && cat ${{{{inputs.model}}}}/lines.txt
    {ENV.strip()}
    inputs:
      model: ${{{{parent.jobs.training.outputs.model}}}}
    outputs:
      final: ${{{{parent.outputs.final}}}}
""")
    init_repo(repo, "A pipeline that runs a pipeline component")
    assert cli("validate", str(repo)).code == 0
    res = cli("job", "run", "pipelines/outer.yml", cwd=repo)
    assert res.code == 0, res.err
    assert steps_of(cli, repo) == {"training.preprocess_job": "completed", "training.train_job": "completed",
                                   "report": "completed"}
    runs = json.loads(cli("job", "list", "--format", "json", cwd=repo).out)
    log = cli("job", "logs", runs[0]["id"], "--step", "report", cwd=repo).out
    assert "scale 5" in log and "3" in log  # the literal reached the inner step, the data file too
    # unchanged, a rerun reuses every inner step
    assert cli("job", "run", "pipelines/outer.yml", cwd=repo).code == 0
    assert set(steps_of(cli, repo).values()) == {"reused"}


def test_a_pipeline_job_may_name_a_pipeline_component_instead_of_jobs(repo: Path, cli: Cli) -> None:
    write(repo / "pipelines" / "job.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
component: ../components/pipeline.yml
inputs:
  input_data: {{type: uri_file, path: ../data/rows.csv}}
outputs:
  model: {{type: uri_folder}}
""")
    init_repo(repo, "A pipeline job of a pipeline component")
    res = cli("job", "run", "pipelines/job.yml", cwd=repo)
    assert res.code == 0, res.err
    assert steps_of(cli, repo) == {"preprocess_job": "completed", "train_job": "completed"}

    # a binding the component does not have: one error naming the job's file
    text = (repo / "pipelines" / "job.yml").read_text().replace("input_data:", "input_date:")
    write(repo / "pipelines" / "job.yml", text)
    res = cli("validate", str(repo))
    assert res.code == 1 and "pipelines/job.yml" in res.out and "input_date" in res.out
