"""`validate`: every bad input gets one clear diagnostic with file:line:column and a stable code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]

MODEL = f"""
$schema: {AZ}/model.schema.json
name: churn
path: ./churn.onnx
"""
ENDPOINT = f"""
$schema: {AZ}/managedOnlineEndpoint.schema.json
name: churn
traffic:
  blue: 90
  green: 10
"""


def deployment(name: str, model: str = "azureml:churn:1") -> str:
    return (f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: {name}\nendpoint_name: churn\n"
            f"model: {model}\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "models").mkdir(parents=True)
    (root / "models" / "churn.onnx").write_bytes(b"onnx")
    write(root / "models" / "churn.yml", MODEL)
    write(root / "endpoints" / "churn.yml", ENDPOINT)
    write(root / "deployments" / "blue.yml", deployment("blue"))
    write(root / "deployments" / "green.yml", deployment("green"))
    return root


def diagnostics(cli: Cli, *args: str) -> tuple[int, list[dict[str, object]]]:
    res = cli("validate", "--format", "json", "--offline", *args)
    return res.code, json.loads(res.out)["diagnostics"]


def only(diags: list[dict[str, object]], code: str) -> dict[str, object]:
    found = [d for d in diags if d["code"] == code]
    assert len(found) == 1, diags
    return found[0]


def test_example_repository_is_valid(cli: Cli, example: Path) -> None:
    res = cli("validate", str(example))
    assert res.code == 0, res.out
    assert "file(s) valid" in res.out


def test_valid_tree(cli: Cli, tree: Path) -> None:
    code, diags = diagnostics(cli, str(tree))
    assert code == 0 and diags == []


def test_malformed_yaml_names_line_and_column(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", f"$schema: {AZ}/model.schema.json\nname: [churn\npath: x\n")
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "YAML001")
    assert code == 1
    assert d["file"] == "models/churn.yml" and d["line"] == 3 and d["severity"] == "error"
    assert "malformed YAML" in str(d["message"])


def test_a_resource_without_schema_is_a_warning_naming_its_likely_kind(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "other.yml", "name: other\npath: ./churn.onnx\n")
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "SCHEMA001")
    assert code == 0 and d["file"] == "models/other.yml" and d["severity"] == "warning"
    assert "looks like a model or data" in str(d["message"]) and "latest/model.schema.json" in str(d["message"])
    assert "managedOnlineDeployment" not in str(d["message"])  # not the list of every kind on every line


def test_other_yaml_beside_the_resources_is_skipped_without_a_word(cli: Cli, tree: Path) -> None:
    write(tree / ".azure-pipelines" / "ci.yml", "trigger: [main]\npool: {vmImage: ubuntu-latest}\nsteps:\n"
                                                "  - script: echo hi\n")
    write(tree / "infra" / "settings.yaml", "region: westeurope\nreplicas: 3\n")
    write(tree / "envs" / "conda.yml", "name: x\ndependencies: [python=3.11]\n")
    code, diags = diagnostics(cli, str(tree))
    assert code == 0 and [d for d in diags if d["code"] == "SCHEMA001"] == []


def test_unknown_schema(cli: Cli, tree: Path) -> None:
    write(tree / "x.yml", "$schema: https://example.com/whatever.schema.json\nname: x\n")
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "SCHEMA002")
    assert code == 1 and (d["line"], d["column"]) == (1, 1)


def test_unmanaged_azure_kind_is_a_warning(cli: Cli, tree: Path) -> None:
    write(tree / "compute.yml", f"$schema: {AZ}/amlCompute.schema.json\nname: cpu\ntype: amlcompute\n")
    code, diags = diagnostics(cli, str(tree))
    assert code == 0
    assert only(diags, "SCHEMA003")["severity"] == "warning"


def test_wrong_field_type(cli: Cli, tree: Path) -> None:
    write(tree / "deployments" / "blue.yml", deployment("blue").replace("instance_count: 1", "instance_count: many"))
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "FIELD001")
    assert code == 1
    assert d["line"] == 6 and "instance_count" in str(d["message"]) and "integer" in str(d["message"])


def test_missing_required_field(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", f"$schema: {AZ}/model.schema.json\npath: ./churn.onnx\n")
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "FIELD001")
    assert code == 1 and "missing required field 'name'" in str(d["message"])


def test_unknown_field_is_a_warning_and_an_error_with_strict(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", MODEL + "descripton: typo\n")
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "FIELD002")
    assert code == 0 and d["severity"] == "warning" and (d["line"], d["column"]) == (4, 1)
    assert "descripton" in str(d["message"])
    code, diags = diagnostics(cli, "--strict", str(tree))
    assert code == 1 and only(diags, "FIELD002")["severity"] == "error"


def test_nested_unknown_field_points_at_its_key(cli: Cli, tree: Path) -> None:
    text = deployment("blue") + "request_settings:\n  request_timeout_ms: 100\n  max_cuncurrent: 2\n"
    write(tree / "deployments" / "blue.yml", text)
    _, diags = diagnostics(cli, str(tree))
    d = only(diags, "FIELD002")
    assert (d["line"], d["column"]) == (9, 3)
    assert "request_settings.max_cuncurrent" in str(d["message"])


def test_dangling_reference(cli: Cli, tree: Path) -> None:
    write(tree / "deployments" / "blue.yml", deployment("blue", "azureml:churn-v2:1"))
    res = cli("validate", "--format", "json", str(tree))  # the workspace is consulted (it holds nothing)
    d = only(json.loads(res.out)["diagnostics"], "REF001")
    assert res.code == 1 and d["file"] == "deployments/blue.yml" and d["line"] == 4 and d["severity"] == "error"
    assert "churn-v2" in str(d["message"])
    # offline (the pre-commit hook) nobody can tell whether the workspace has it: a warning
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "REF001")
    assert code == 0 and d["severity"] == "warning" and "checked by plan and apply" in str(d["message"])


def test_explicit_version_reference_must_exist(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", MODEL + "version: '3'\n")
    res = cli("validate", "--format", "json", str(tree))  # the (empty) workspace is consulted
    code, diags = res.code, json.loads(res.out)["diagnostics"]
    refs = [d for d in diags if d["code"] == "REF001"]
    assert code == 1 and len(refs) == 2  # blue and green both ask for churn:1
    assert all("versions known: 3" in str(d["message"]) for d in refs)


def test_deployment_endpoint_must_exist(cli: Cli, tree: Path) -> None:
    (tree / "endpoints" / "churn.yml").unlink()
    code, diags = diagnostics(cli, str(tree))
    assert code == 1
    assert all(d["code"] == "REF004" for d in diags) and len(diags) == 2


def test_traffic_must_sum_to_100(cli: Cli, tree: Path) -> None:
    write(tree / "endpoints" / "churn.yml", ENDPOINT.replace("green: 10", "green: 20"))
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "TRAFFIC002")
    assert code == 1 and d["line"] == 3 and "sums to 110" in str(d["message"])


def test_traffic_to_unknown_deployment(cli: Cli, tree: Path) -> None:
    write(tree / "endpoints" / "churn.yml", ENDPOINT.replace("green: 10", "red: 10"))
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "TRAFFIC001")
    assert code == 1 and d["line"] == 5 and "'red'" in str(d["message"]) and "blue, green" in str(d["message"])


def test_mirror_traffic_limits(cli: Cli, tree: Path) -> None:
    write(tree / "endpoints" / "churn.yml", ENDPOINT + "mirror_traffic:\n  blue: 60\n")
    code, diags = diagnostics(cli, str(tree))
    codes = sorted(d["code"] for d in diags)  # type: ignore[type-var]
    assert code == 1 and codes == ["MIRROR001", "MIRROR002"]


def test_names_follow_azure_rules(cli: Cli, tree: Path) -> None:
    write(tree / "deployments" / "blue.yml", deployment("blue-").replace("name: blue-", "name: b_"))
    write(tree / "endpoints" / "churn.yml", ENDPOINT.replace("blue: 90", "b_: 90"))
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "NAME001")
    assert code == 1 and "3-32 characters" in str(d["message"])


def test_version_must_not_be_a_float(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", MODEL + "version: 1.10\n")
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "FIELD001")
    assert code == 1 and "quote it" in str(d["message"])


def test_path_escaping_the_repository(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", MODEL.replace("./churn.onnx", "../../../etc/passwd"))
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "REF003")
    assert code == 1 and d["line"] == 3


def test_missing_local_path(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "churn.yml", MODEL.replace("./churn.onnx", "./nope.onnx"))
    code, diags = diagnostics(cli, str(tree))
    assert code == 1 and "does not exist" in str(only(diags, "REF002")["message"])


def test_duplicate_names(cli: Cli, tree: Path) -> None:
    write(tree / "models" / "copy.yml", MODEL)
    code, diags = diagnostics(cli, str(tree))
    d = only(diags, "DUP001")
    assert code == 1 and "also declared in models/c" in str(d["message"])


def test_single_file_is_checked_against_the_whole_tree(cli: Cli, tree: Path) -> None:
    init_repo(tree)  # pre-commit runs inside a Git work tree; the root is found from it
    # The deployment references a model defined in another file: still resolves.
    code, diags = diagnostics(cli, str(tree / "deployments" / "blue.yml"))
    assert code == 0 and diags == []
    write(tree / "deployments" / "green.yml", deployment("green", "azureml:churn:1").replace(
        "endpoint_name: churn", "endpoint_name: no-such-endpoint"))
    code, diags = diagnostics(cli, str(tree / "deployments" / "blue.yml"))
    assert code == 0, "errors in other files are not reported for the files asked about"
    code, diags = diagnostics(cli, str(tree / "deployments" / "green.yml"))
    assert code == 1 and only(diags, "REF004")["file"] == "deployments/green.yml"


def test_referenced_non_resource_yaml_is_not_an_error(cli: Cli, tree: Path) -> None:
    write(tree / "env" / "conda.yaml", "name: x\ndependencies: [python=3.11]\n")
    env = f"$schema: {AZ}/environment.schema.json\nname: e\nimage: img\nconda_file: conda.yaml\n"
    write(tree / "env" / "env.yml", env)
    code, diags = diagnostics(cli, str(tree))
    assert code == 0 and diags == []


def test_excluded_files_are_ignored(cli: Cli, tree: Path) -> None:
    write(tree / "mlops.yaml", "exclude: ['samples/**']\n")
    write(tree / "samples" / "request.yml", "data: [[1, 2]]\n")
    code, diags = diagnostics(cli, str(tree))
    assert code == 0 and diags == []


def test_pipeline_bindings_are_checked(cli: Cli, tree: Path) -> None:
    write(tree / "src" / "a.py", "print(1)\n")
    write(tree / "components" / "prep.yml", f"""
        $schema: {AZ}/commandComponent.schema.json
        name: prep
        inputs: {{raw: {{type: uri_file}}}}
        outputs: {{clean: {{type: uri_folder}}}}
        code: ../src
        environment: {{image: python}}
        command: python a.py ${{{{inputs.raw}}}} ${{{{outputs.clean}}}} ${{{{inputs.nope}}}}
    """)
    write(tree / "pipelines" / "p.yml", f"""
        $schema: {AZ}/pipelineJob.schema.json
        type: pipeline
        inputs: {{raw: {{type: uri_file, path: ../models/churn.onnx}}}}
        jobs:
          prep:
            component: ../components/prep.yml
            inputs: {{raw: "${{{{parent.inputs.rwa}}}}"}}
          train:
            component: ../components/prep.yml
            inputs: {{raw: "${{{{parent.jobs.prep.outputs.dirty}}}}"}}
    """)
    code, diags = diagnostics(cli, str(tree))
    binds = [d for d in diags if d["code"] == "BIND001"]
    assert code == 1 and len(binds) == 2
    assert any("no input 'rwa'" in str(d["message"]) for d in binds)
    assert any("no output 'dirty'" in str(d["message"]) and "clean" in str(d["message"]) for d in binds)
    assert "'inputs.nope'" in str(only(diags, "CMD001")["message"]).replace("${{", "'").replace("}}", "'")


def test_pipeline_step_cycle(cli: Cli, tree: Path) -> None:
    write(tree / "pipelines" / "p.yml", f"""
        $schema: {AZ}/pipelineJob.schema.json
        type: pipeline
        jobs:
          a:
            command: echo a
            environment: {{image: python}}
            inputs: {{x: "${{{{parent.jobs.b.outputs.o}}}}"}}
            outputs: {{o: {{type: uri_folder}}}}
          b:
            command: echo b
            environment: {{image: python}}
            inputs: {{x: "${{{{parent.jobs.a.outputs.o}}}}"}}
            outputs: {{o: {{type: uri_folder}}}}
    """)
    code, diags = diagnostics(cli, str(tree))
    assert code == 1 and "cycle" in str(only(diags, "BIND004")["message"])


def test_github_format_escapes(cli: Cli, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    write(tree / "endpoints" / "churn.yml", ENDPOINT.replace("green: 10", "green: 20"))
    res = cli("validate", "--offline", "--format", "github", ".")
    assert res.code == 1
    line = next(x for x in res.out.splitlines() if x.startswith("::error"))
    assert line.startswith("::error file=endpoints/churn.yml,line=3,col=1,title=TRAFFIC002::")


def test_text_format(cli: Cli, tree: Path) -> None:
    write(tree / "endpoints" / "churn.yml", ENDPOINT.replace("green: 10", "green: 20"))
    res = cli("validate", "--offline", str(tree))
    assert res.code == 1
    assert "endpoints/churn.yml:3:1: error TRAFFIC002: traffic of endpoint 'churn' sums to 110" in res.out
    assert "Traceback" not in res.out + res.err


def test_nonexistent_path(cli: Cli, tmp_path: Path) -> None:
    res = cli("validate", str(tmp_path / "nope"))
    assert res.code == 1 and "does not exist" in res.err and "Traceback" not in res.err


def test_conda_file_of_an_anonymous_component_is_not_a_resource(cli: Cli, tree: Path) -> None:
    write(tree / "src" / "a.py", "print(1)\n")
    write(tree / "components" / "conda.yaml", "name: x\ndependencies: [python=3.11]\n")
    write(tree / "components" / "prep.yml", """
        name: prep
        type: command
        code: ../src
        environment:
          image: python
          conda_file: conda.yaml
        command: python a.py
    """)
    write(tree / "pipelines" / "p.yml", f"""
        $schema: {AZ}/pipelineJob.schema.json
        type: pipeline
        jobs:
          prep:
            component: ../components/prep.yml
    """)
    code, diags = diagnostics(cli, str(tree))
    assert code == 0 and diags == []
