"""Azure's files as its SDK reads them: SDK-style `$schema` URLs, enum case, anonymous components, the
endpoint of a deployment inferred from its folder, and step types that only Azure runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]
SDK = "http://azureml/sdk-2-0"


def diagnostics(cli: Cli, root: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    res = cli("validate", str(root), "--format", "json", "--offline", *args)
    return res.code, json.loads(res.out)["diagnostics"]


def codes(diags: list[dict[str, object]]) -> list[str]:
    return sorted(str(d["code"]) for d in diags)


def test_sdk_schema_urls_and_enum_values_in_any_case(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "ep" / "endpoint.yml", f"$schema: {SDK}/OnlineEndpoint.json\nname: ep1\nauth_mode: Key\n")
    write(tmp_path / "c" / "train.yml", f"$schema: {SDK}/CommandComponent.json\nname: train\ntype: Command\n"
                                        "command: echo ${{inputs.m}}\nenvironment: {image: python}\n"
                                        "inputs:\n  m: {type: Custom_Model}\n  t: {type: triton_model}\n"
                                        "outputs:\n  o: {type: mlflow_model}\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 0 and diags == []
    plan = json.loads(cli("plan", str(tmp_path), "--format", "json").out)
    endpoint = next(c for c in plan["resource_changes"] if c["address"] == "online-endpoint:ep1")
    assert {"path": "auth_mode", "before": None, "after": "key", "forces_replace": False} in endpoint["fields"]
    # the schema-only hook reads enum values the same way
    res = cli("validate", "--schema-only", str(tmp_path / "ep" / "endpoint.yml"), str(tmp_path / "c" / "train.yml"))
    assert res.code == 0, res.out
    # a value that is no enum member in any case is still an error, with its line
    write(tmp_path / "ep" / "endpoint.yml", f"$schema: {SDK}/OnlineEndpoint.json\nname: ep1\nauth_mode: Keys\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 1 and [(d["file"], d["line"]) for d in diags] == [("ep/endpoint.yml", 3)]


def test_component_names_follow_the_sdk_unless_the_component_is_used_by_path(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "train.yml", f"$schema: {AZ}/commandComponent.schema.json\nname: uci-heart-train\n"
                                  "command: echo hi\nenvironment: {image: python}\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 1 and codes(diags) == ["NAME001"] and "registered component" in str(diags[0]["message"])
    write(tmp_path / "pipeline.yml", f"$schema: {AZ}/pipelineJob.schema.json\ntype: pipeline\n"
                                     "jobs:\n  train_job: {type: command, component: ./train.yml}\n")
    code, diags = diagnostics(cli, tmp_path)  # anonymous, as Azure loads it: its name is not checked
    assert code == 0, diags


def test_a_deployment_without_endpoint_name_belongs_to_the_endpoint_of_its_folder(cli: Cli, tmp_path: Path) -> None:
    deployment = (f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\nmodel: {{path: ./m.onnx}}\n"
                  "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    write(tmp_path / "sample" / "endpoint.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: my-ep\n")
    write(tmp_path / "sample" / "blue-deployment.yml", deployment)
    (tmp_path / "sample" / "m.onnx").write_bytes(b"onnx")
    init_repo(tmp_path, "Azure's sample endpoint folder")
    res = cli("plan", str(tmp_path), "--format", "json")
    assert res.code == 0, res.err
    assert "online-deployment:my-ep/blue" in [c["address"] for c in json.loads(res.out)["resource_changes"]]

    write(tmp_path / "sample" / "other.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: other-ep\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 1 and codes(diags) == ["REF004"]
    assert diags[0]["file"] == "sample/blue-deployment.yml" and "several online endpoints (my-ep, other-ep)" in str(
        diags[0]["message"])
    write(tmp_path / "lonely" / "blue.yml", deployment)
    code, diags = diagnostics(cli, tmp_path)
    assert "declares no online endpoint" in str([d["message"] for d in diags if d["file"] == "lonely/blue.yml"])


def test_steps_only_azure_runs_are_one_warning_each_and_a_clear_error_at_run(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\n"
                                   "default_workspace: dev\n")
    write(tmp_path / "p.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
jobs:
  prep:
    command: echo hi > ${{{{outputs.out}}}}/x
    environment: {{image: python}}
    outputs: {{out: {{type: uri_folder}}}}
  wrangle:
    type: Spark
    entry: {{file: wrangle.py}}
    conf: {{spark.driver.cores: 1}}
    inputs:
      raw: ${{{{parent.jobs.prep.outputs.out}}}}
    outputs: {{clean: {{type: uri_folder}}}}
  train:
    type: automl
    task: classification
    primary_metric: accuracy
    training_data: ${{{{parent.jobs.wrangle.outputs.clean}}}}
""")
    write(tmp_path / "sweep.yml", f"$schema: {AZ}/sweepJob.schema.json\ntype: sweep\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 0 and codes(diags) == ["SCHEMA003", "STEP001", "STEP001"]
    assert {(d["line"], "not run in the local workspace" in str(d["message"])) for d in diags
            if d["code"] == "STEP001"} == {(8, True), (15, True)}
    assert cli("validate", "--schema-only", str(tmp_path / "p.yml")).code == 0  # the published schema agrees
    init_repo(tmp_path, "A pipeline with a Spark and an AutoML step")
    res = cli("job", "run", "p.yml", cwd=tmp_path)
    assert res.code == 1 and "step 'wrangle' is of type spark, which the local workspace does not run" in res.err


def test_the_early_code_local_path_form_is_the_folder(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "src" / "hello.py", "print('hello')\n")
    write(tmp_path / "job.yml", f"$schema: {AZ}/commandJob.schema.json\ncommand: python hello.py\n"
                                "code:\n  local_path: src\nenvironment: {image: python}\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 0 and diags == []
    write(tmp_path / "job.yml", f"$schema: {AZ}/commandJob.schema.json\ncommand: python hello.py\n"
                                "code:\n  local_path: nowhere\nenvironment: {image: python}\n")
    code, diags = diagnostics(cli, tmp_path)
    assert code == 1 and codes(diags) == ["REF002"]
