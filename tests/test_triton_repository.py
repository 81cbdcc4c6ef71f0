"""Triton model repositories (`type: triton_model`): each ONNX model served by onnxruntime under Triton's
own routes, on the endpoint's own port, and called with Triton's HTTP client from PyPI as it comes."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from tests.helpers import AZ, EXAMPLE, Result, init_repo, write
from tests.serving_helpers import stop_host

pytestmark = pytest.mark.slow
Cli = Callable[..., Result]


def adder(path: Path) -> None:
    """y = x + 1 over FP32 [-1, 2]."""
    one = h.make_tensor("one", T.FLOAT, [1], [1.0])
    graph = h.make_graph([h.make_node("Add", ["x", "one"], ["y"])], "adder",
                         [h.make_tensor_value_info("x", T.FLOAT, [None, 2])],
                         [h.make_tensor_value_info("y", T.FLOAT, [None, 2])], initializer=[one])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    port = free_port()
    write(root / "mlops.yaml", "workspaces:\n  dev:\n    path: .mlops/dev\n    runtime: process\n"
                               f"    endpoint_ports: {{triton-ep: {port}}}\ndefault_workspace: dev\n")
    models = root / "models" / "triton" / "models"  # Azure's layout: the repository folder holds the models
    adder(models / "adder" / "1" / "model.onnx")
    adder(models / "adder" / "2" / "model.onnx")  # the highest version is served
    write(models / "adder" / "config.pbtxt", 'name: "adder"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n')
    (models / "cancer" / "1").mkdir(parents=True)
    shutil.copy(EXAMPLE / "models" / "cancer-onnx" / "model.onnx", models / "cancer" / "1" / "model.onnx")
    write(models / "cancer" / "config.pbtxt", 'name: "cancer"\nbackend: "onnxruntime"\n')
    write(models / "torch" / "config.pbtxt", 'name: "torch"\nplatform: "pytorch_libtorch"\n')
    (models / "torch" / "1").mkdir(parents=True)
    write(root / "models" / "triton.yml", f"$schema: {AZ}/model.schema.json\nname: triton-repo\nversion: '1'\n"
                                          "type: triton_model\npath: ./triton/models\n")
    write(root / "endpoints" / "triton.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: triton-ep\n"
                                             "auth_mode: key\ntraffic: {blue: 100}\n")
    write(root / "deployments" / "blue.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\n"
                                             "endpoint_name: triton-ep\nmodel: azureml:triton-repo:1\n"
                                             "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    # an endpoint named like one of the repository's models, on the host's main port
    write(root / "models" / "cancer.yml", f"$schema: {AZ}/model.schema.json\nname: cancer-onnx\nversion: '1'\n"
                                          "path: ./cancer\n")
    shutil.copytree(EXAMPLE / "models" / "cancer-onnx", root / "models" / "cancer")
    write(root / "endpoints" / "adder.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: adder\n"
                                            "auth_mode: key\ntraffic: {main: 100}\n")
    write(root / "deployments" / "adder-main.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\n"
                                                   "name: main\nendpoint_name: adder\nmodel: azureml:cancer-onnx:1\n"
                                                   "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    init_repo(root)
    yield root, port
    stop_host(root / ".mlops" / "dev")


def test_tritons_client_calls_each_model_of_the_repository_on_the_endpoints_port(
        cli: Cli, repo: tuple[Path, int]) -> None:
    import tritonclient.http as triton

    root, port = repo
    res = cli("apply", "--auto-approve", cwd=root)
    assert res.code == 0, res.out + res.err
    keys = json.loads(cli("endpoint", "get-credentials", "triton-ep", cwd=root).out)
    auth = {"Authorization": f"Bearer {keys['primaryKey']}"}
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    assert client.is_model_ready("adder", headers=auth)
    assert client.is_model_ready("cancer", headers=auth)
    assert not client.is_model_ready("torch", headers=auth)  # not ONNX: listed, not served
    meta = client.get_model_metadata("adder", headers=auth)
    assert meta["versions"] == ["2"] and meta["inputs"][0]["name"] == "x"
    index = {m["name"]: m for m in client.get_model_repository_index(headers=auth)}
    assert index["torch"]["state"] == "UNAVAILABLE" and "pytorch_libtorch" in index["torch"]["reason"]
    x = np.array([[1.0, 2.0], [3.5, -1.0]], dtype=np.float32)
    given = triton.InferInput("x", list(x.shape), "FP32")
    given.set_data_from_numpy(x)  # binary tensor data, as the client sends by default
    answer = client.infer("adder", [given], headers=auth)
    np.testing.assert_allclose(answer.as_numpy("y"), x + 1)
    assert answer.get_response()["model_name"] == "adder" and answer.get_response()["model_version"] == "2"
    rows = np.array(json.loads((Path(__file__).parents[1] / "example-repo" / "samples" / "request.json")
                               .read_text())["data"], dtype=np.float32)
    features = triton.InferInput("X", list(rows.shape), "FP32")
    features.set_data_from_numpy(rows)
    labels = client.infer("cancer", [features], headers=auth).as_numpy("label")
    assert labels.shape == (len(rows),)
    with pytest.raises(triton.InferenceServerException, match="wrong key"):
        client.infer("adder", [given])
    with pytest.raises(triton.InferenceServerException, match="not available"):
        client.infer("torch", [given], headers=auth)
    # on the host's main port, `adder` is still the endpoint of that name (an ONNX model of 30 features)
    info = json.loads((root / ".mlops" / "dev" / "host.json").read_text())
    main = triton.InferenceServerClient(url=info["url"].removeprefix("http://"))
    main_keys = json.loads(cli("endpoint", "get-credentials", "adder", cwd=root).out)
    meta = main.get_model_metadata("adder", headers={"Authorization": f"Bearer {main_keys['primaryKey']}"})
    assert meta["inputs"][0]["name"] == "X" and meta["inputs"][0]["shape"] == [-1, 30]
