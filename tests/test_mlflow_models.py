"""MLflow models deployed without a scoring script: served by mlflow.pyfunc in the model's own
environment (built from the requirements it was logged with), answering Azure's and MLflow's formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import AZ, PROCESS_WORKSPACE, Result, built_once, init_repo, write
from tests.serving_helpers import stop_host

Cli = Callable[..., Result]
pytestmark = pytest.mark.slow
PACKAGES = ("mlflow-skinny", "scikit-learn", "pandas", "skops")


@pytest.fixture(scope="session")
def mlflow_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with MLflow, to make models as a training script would (uv, real packages);
    built once for all workers of the run."""
    from uv import find_uv_bin

    def build(folder: Path) -> None:
        uv = find_uv_bin()
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(folder / "venv")], check=True, timeout=300)
        env = {**os.environ, "VIRTUAL_ENV": str(folder / "venv")}
        subprocess.run([uv, "pip", "install", "-q", *PACKAGES], check=True, env=env, timeout=600)

    return built_once(tmp_path_factory, "mlflow-venv", build) / "venv" / "bin" / "python"


TRAIN = """
import json, sys, mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=500).fit(X, y)
mlflow.sklearn.save_model(model, sys.argv[1], input_example=X.head(2))
rows = X.iloc[[0, 60, 120]]
print(json.dumps({"columns": list(X.columns), "data": rows.values.tolist(),
                  "expected": model.predict(rows).tolist()}))
"""


@pytest.fixture
def tree(tmp_path: Path, mlflow_python: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, dict]]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    write(root / "mlops.yaml", PROCESS_WORKSPACE)
    out = subprocess.run([str(mlflow_python), "-c", TRAIN, str(root / "model-1" / "iris")], check=True,
                         capture_output=True, text=True, timeout=300)
    sample = json.loads(out.stdout.strip().splitlines()[-1])
    # Azure's layout: an endpoint folder beside the model folder, no scoring script, no environment
    write(root / "cli" / "model.yml", f"$schema: {AZ}/model.schema.json\nname: iris\nversion: '1'\n"
                                      "type: mlflow_model\npath: ../model-1/iris\n")
    write(root / "cli" / "endpoint.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: iris-ep\n"
                                         "auth_mode: key\ntraffic: {blue: 100}\n")
    write(root / "cli" / "blue.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\n"
                                     "model: azureml:iris:1\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n")
    init_repo(root, "An MLflow model and a deployment without a scoring script")
    yield root, sample
    stop_host(root / ".mlops" / "dev")


def invoke(cli: Cli, root: Path, body: object) -> Result:
    request = root / "request.json"
    request.write_text(json.dumps(body))
    return cli("endpoint", "invoke", "iris-ep", "--request-file", str(request), "-C", str(root))


def test_an_mlflow_model_is_served_without_a_scoring_script(cli: Cli, tree: tuple[Path, dict],
                                                           tmp_path: Path) -> None:
    root, sample = tree
    res = cli("apply", str(root), "--auto-approve")
    assert res.code == 0, res.err
    split = {"columns": sample["columns"], "index": [0, 1, 2], "data": sample["data"]}
    res = invoke(cli, root, {"input_data": split})  # Azure's format: the bare list of predictions
    assert res.code == 0, res.err
    assert json.loads(res.out) == sample["expected"]
    res = invoke(cli, root, {"dataframe_split": {"columns": sample["columns"], "data": sample["data"]}})
    assert json.loads(res.out) == {"predictions": sample["expected"]}  # MLflow's format, MLflow's answer
    records = [dict(zip(sample["columns"], row, strict=True)) for row in sample["data"]]
    assert json.loads(invoke(cli, root, {"dataframe_records": records}).out) == {"predictions": sample["expected"]}
    # the environment came from the model's own requirements, with MLflow's pyfunc (mlflow-skinny) in it
    envs = list((root / ".mlops" / "dev" / "envs").glob("*/lib/python*/site-packages/mlflow_skinny-*"))
    assert envs, "the deployment's environment has mlflow-skinny"
    res = invoke(cli, root, {"rows": []})  # a body in no known format: an error that says what to send
    assert res.code != 0 and "input_data" in res.out + res.err
    _batch_scoring(cli, root, sample, tmp_path)


TABLE_SCRIPT = """
import os
def init():
    pass
def run(mini_batch):  # a tabular input: one DataFrame of the mini-batch's files, as Azure gives it
    return [f"{type(mini_batch).__name__},{len(mini_batch)},{','.join(map(str, mini_batch.columns))}"]
"""


def _batch_scoring(cli: Cli, root: Path, sample: dict, tmp_path: Path) -> None:
    """The same model in a batch deployment without a scoring script, and a scoring script given a tabular
    (MLTable) input: scored in the environments this workspace has already built."""
    write(root / "cli" / "batch-endpoint.yml", f"$schema: {AZ}/batchEndpoint.schema.json\nname: iris-batch\n"
                                               "defaults: {deployment_name: mlflow}\n")
    write(root / "cli" / "batch.yml", f"$schema: {AZ}/modelBatchDeployment.schema.json\nname: mlflow\n"
                                      "endpoint_name: iris-batch\ntype: model\nmodel: azureml:iris:1\n"
                                      "settings: {mini_batch_size: 1}\n")
    # a scoring script given a tabular (MLTable) input, in the model's environment, which has pandas
    write(root / "src" / "table.py", TABLE_SCRIPT)
    write(root / "cli" / "table.yml", f"$schema: {AZ}/modelBatchDeployment.schema.json\nname: table\n"
                                      "endpoint_name: iris-batch\ntype: model\nmodel: azureml:iris:1\n"
                                      "code_configuration: {code: ../src, scoring_script: table.py}\n"
                                      "environment:\n"
                                      "  image: mcr.microsoft.com/azureml/minimal-py311-inference:latest\n"
                                      "  conda_file: ./table-conda.yml\nsettings: {mini_batch_size: 5}\n")
    write(root / "cli" / "table-conda.yml", "name: t\ndependencies:\n  - python=3.11\n  - pip:\n    - pandas\n")
    init_repo(root, "and a batch endpoint")
    res = cli("apply", str(root), "--auto-approve")
    assert res.code == 0, res.err
    inputs = tmp_path / "in"
    inputs.mkdir()
    header = ",".join(sample["columns"])
    for i, row in enumerate(sample["data"]):
        (inputs / f"r{i}.csv").write_text(header + "\n" + ",".join(map(str, row)) + "\n")
    res = cli("batch", "invoke", "iris-batch", "--input", str(inputs), "--output", str(tmp_path / "out"), "-C",
              str(root))
    assert res.code == 0, res.out + res.err
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert [line.split(",") for line in lines] == [["0", str(p), f"r{i}.csv"] for i, p in enumerate(sample["expected"])]
    table = tmp_path / "table"
    table.mkdir()
    for i in range(2):
        (table / f"part{i}.csv").write_text("a,b\n1,2\n3,4\n")
    (table / "MLTable").write_text("paths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited: {}\n")
    res = cli("batch", "invoke", "iris-batch", "-d", "table", "--input", str(table), "--output",
              str(tmp_path / "out2"), "-C", str(root))
    assert res.code == 0, res.out + res.err
    assert (tmp_path / "out2" / "predictions.csv").read_text().splitlines() == ["DataFrame,4,a,b"]


TRAIN_SCRIPT = """
import sys, mlflow, mlflow.sklearn, pandas as pd
from sklearn.linear_model import LogisticRegression
data = pd.read_csv(sys.argv[1])
X, y = data.drop(columns="target"), data["target"]
with mlflow.start_run() as run:
    mlflow.log_param("C", 0.5)
    mlflow.set_tag("team", "fraud")
    model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    for epoch, value in enumerate([0.5, 0.8, model.score(X, y)]):
        mlflow.log_metric("accuracy", value, step=epoch)
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "taxi-model")
print("trained", model.score(X, y))
"""
PREP_SCRIPT = """
import sys
from pathlib import Path
from sklearn.datasets import load_iris
frame = load_iris(as_frame=True).frame
Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
frame.to_csv(Path(sys.argv[1]) / "iris.csv", index=False)
"""


def test_a_training_pipeline_that_registers_with_mlflow_feeds_the_workspace(cli: Cli, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    write(root / "mlops.yaml", PROCESS_WORKSPACE)
    write(root / "pipelines" / "src" / "train.py", TRAIN_SCRIPT)
    write(root / "pipelines" / "src" / "prep.py", PREP_SCRIPT)
    write(root / "pipelines" / "conda.yml", "name: train\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
                                            + "".join(f"    - {p}\n" for p in PACKAGES))
    env = "{image: python, conda_file: ./conda.yml}"
    write(root / "pipelines" / "train.yml", f"""$schema: {AZ}/pipelineJob.schema.json
type: pipeline
name: train-taxi
jobs:
  prep:
    code: ./src
    command: python prep.py ${{{{outputs.data}}}}
    environment: {env}
    outputs: {{data: {{type: uri_folder}}}}
  train:
    code: ./src
    command: python train.py ${{{{inputs.data}}}}/iris.csv
    environment: {env}
    inputs:
      data: ${{{{parent.jobs.prep.outputs.data}}}}
""")
    write(root / "endpoints" / "endpoint.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: taxi-ep\n"
                                               "traffic: {blue: 100}\n")
    write(root / "endpoints" / "blue.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\n"
                                           "model: azureml:taxi-model@latest\ninstance_type: Standard_DS3_v2\n"
                                           "instance_count: 1\n")
    init_repo(root, "A training job that registers through MLflow, and a deployment of its model")
    try:
        assert cli("plan", str(root)).code == 1  # the deployment's model exists nowhere yet
        res = cli("job", "run", "pipelines/train.yml", cwd=root)  # ...which does not block the training run
        assert res.code == 0, res.err
        assert "warning REF001" in res.err and "registered model taxi-model:1" in res.err + res.out
        runs = json.loads(cli("job", "list", "--format", "json", cwd=root).out)
        shown = json.loads(cli("job", "show", runs[0]["id"], "--format", "json", cwd=root).out)
        main = next(s for s in shown["steps"] if s["step"] == "train")  # the last step registers the model
        assert main["metrics"]["accuracy"] > 0.9  # the last step's value
        assert main["metrics"]["params.C"] == "0.5" and main["metrics"]["tags.team"] == "fraud"
        assert "mlflow_model" in main["outputs"]  # the logged model is kept with the run

        model = json.loads(cli("state", "show", "model:taxi-model:1", "--format", "json", cwd=root).out)
        assert model["spec"]["type"] == "mlflow_model" and model["provenance"]["run.id"] == runs[0]["id"]
        lineage = cli("lineage", "model:taxi-model:1", cwd=root)
        assert lineage.code == 0 and runs[0]["id"] in lineage.out

        res = cli("apply", str(root), "--auto-approve")  # now @latest resolves, and serves without a script
        assert res.code == 0, res.err
        request = root / "request.json"
        request.write_text(json.dumps({"input_data": {"columns": ["sepal length (cm)", "sepal width (cm)",
                                                                  "petal length (cm)", "petal width (cm)"],
                                                      "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}))
        res = cli("endpoint", "invoke", "taxi-ep", "--request-file", str(request), "-C", str(root))
        assert res.code == 0, res.err
        assert json.loads(res.out) == [0, 2]
    finally:
        stop_host(root / ".mlops" / "dev")
