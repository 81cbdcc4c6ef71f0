"""ONNX models as converters write them: ZipMap's sequences of maps, string labels, int64 and several inputs.

The models are built with ONNX's own helpers from the operators skl2onnx emits for a classifier
(LinearClassifier, then ZipMap of the probabilities), and served by the real endpoint host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from mlops_gitops.commands.apply import apply
from tests.helpers import AZ, write
from tests.serving_helpers import Host, stop_host

pytestmark = pytest.mark.slow


def classifier(path: Path, labels: list[Any], several_inputs: bool = False) -> Path:
    """A two-class linear classifier with skl2onnx's default outputs: `label` and ZipMap's `probabilities`."""
    nodes = []
    if several_inputs:  # as a ColumnTransformer's conversion: one input per column group, int64 counts among them
        inputs = [h.make_tensor_value_info("num", T.FLOAT, [None, 3]),
                  h.make_tensor_value_info("count", T.INT64, [None, 1])]
        nodes += [h.make_node("Cast", ["count"], ["count_f"], to=T.FLOAT),
                  h.make_node("Concat", ["num", "count_f"], ["x"], axis=1)]
    else:
        inputs = [h.make_tensor_value_info("x", T.FLOAT, [None, 4])]
    strings = isinstance(labels[0], str)
    nodes.append(h.make_node("LinearClassifier", ["x"], ["label", "probability_tensor"], domain="ai.onnx.ml",
                             coefficients=[0.5, -0.2, 0.1, 0.3, -0.5, 0.2, -0.1, -0.3], intercepts=[0.1, -0.1],
                             post_transform="SOFTMAX",
                             **({"classlabels_strings": labels} if strings else {"classlabels_ints": labels})))
    nodes.append(h.make_node("ZipMap", ["probability_tensor"], ["probabilities"], domain="ai.onnx.ml",
                             **({"classlabels_strings": labels} if strings else {"classlabels_int64s": labels})))
    key = T.STRING if strings else T.INT64
    maps = h.make_sequence_type_proto(h.make_map_type_proto(key, h.make_tensor_type_proto(T.FLOAT, [])))
    graph = h.make_graph(nodes, "classifier", inputs,
                         [h.make_tensor_value_info("label", key, [None]), h.make_value_info("probabilities", maps)])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 15), h.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path / "model.onnx")
    return path


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = tmp_path / "repo"
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n")
    for name, labels, several in (("ints", [0, 1], False), ("words", ["benign", "malignant"], True)):
        classifier(root / "models" / name, labels, several)
        write(root / "models" / f"{name}.yml", f"$schema: {AZ}/model.schema.json\nname: {name}\nversion: '1'\n"
                                               f"path: ./{name}\n")
        write(root / "endpoints" / f"{name}.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: {name}\n"
                                                  "auth_mode: key\ntraffic: {blue: 100}\n")
        write(root / "deployments" / f"{name}.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\n"
                                                    f"name: blue\nendpoint_name: {name}\nmodel: azureml:{name}:1\n"
                                                    "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    assert apply(str(root), auto_approve=True) == 0
    yield _host(root / ".mlops" / "dev")
    stop_host(root / ".mlops" / "dev")


def _host(workspace: Path) -> Host:
    import httpx

    info = json.loads((workspace / "host.json").read_text())
    host = Host.__new__(Host)
    host.workspace, host.url, host.pid, host.token = workspace, info["url"], info["pid"], info["admin_token"]
    host.client = httpx.Client(base_url=host.url, timeout=30)
    return host


def post(host: Host, endpoint: str, path: str, body: Any) -> Any:
    res = host.client.post(f"/endpoints/{endpoint}/{path}" if path == "score" else f"/v2/models/{endpoint}/infer",
                           json=body, headers=host.auth(endpoint))
    assert res.status_code == 200, res.text
    return res.json()


def test_zipmap_outputs_answer_as_json_on_both_protocols(served: Host) -> None:
    rows = [[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]]
    azure = post(served, "ints", "score", {"data": rows})
    assert len(azure["label"]) == 2 and set(azure["label"]) <= {0, 1}
    assert [set(p) for p in azure["probabilities"]] == [{"0", "1"}, {"0", "1"}]
    assert all(abs(sum(p.values()) - 1) < 1e-5 for p in azure["probabilities"])
    v2 = post(served, "ints", "v2", {"id": "req-7", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                                                 "data": [v for row in rows for v in row]}]})
    assert v2["id"] == "req-7"
    outputs = {o["name"]: o for o in v2["outputs"]}
    assert outputs["label"]["datatype"] == "INT64" and outputs["label"]["data"] == azure["label"]
    maps = outputs["probabilities"]
    assert maps["datatype"] == "BYTES" and maps["shape"] == [2]
    assert [json.loads(text) for text in maps["data"]] == azure["probabilities"]


def test_string_labels_and_several_inputs_by_name(served: Host) -> None:
    records = [{"num": [1.0, 2.0, 3.0], "count": 4}, {"num": [4.0, 3.0, 2.0], "count": 1}]
    by_rows = post(served, "words", "score", {"data": records})
    assert set(by_rows["label"]) <= {"benign", "malignant"} and len(by_rows["label"]) == 2
    assert set(by_rows["probabilities"][0]) == {"benign", "malignant"}
    by_inputs = post(served, "words", "score", {"inputs": {"num": [r["num"] for r in records],
                                                           "count": [[4], [1]]}})
    assert by_inputs == by_rows
    split = post(served, "words", "score", {"input_data": {"columns": ["num", "count"],
                                                           "data": [[r["num"], r["count"]] for r in records]}})
    assert split == by_rows
    v2 = post(served, "words", "v2", {"inputs": [
        {"name": "num", "shape": [2, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0, 3.0, 2.0]},
        {"name": "count", "shape": [2, 1], "datatype": "INT64", "data": [4, 1]}]})
    labels = next(o for o in v2["outputs"] if o["name"] == "label")
    assert labels["datatype"] == "BYTES" and labels["data"] == by_rows["label"]


def test_inputs_that_cannot_be_right_are_400s_that_say_why(served: Host) -> None:
    def refused(body: Any) -> str:
        res = served.client.post("/endpoints/words/score", json=body, headers=served.auth("words"))
        assert res.status_code == 400, (res.status_code, res.text)
        return str(res.json())

    assert "not whole numbers" in refused({"inputs": {"num": [[1.0, 2.0, 3.0]], "count": [[1.5]]}})
    assert "lack input(s) count" in refused({"data": [{"num": [1.0, 2.0, 3.0]}]})
    assert "several inputs" in refused({"data": [[1.0, 2.0, 3.0, 4.0]]})


def test_tritons_own_http_client_as_it_comes(served: Host) -> None:
    """tritonclient sends tensors as binary data by default and reads binary outputs back."""
    import numpy as np
    import tritonclient.http as triton

    client = triton.InferenceServerClient(served.url.removeprefix("http://"))
    headers = served.auth("words")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    config = client.get_model_config("words", headers=headers)
    assert [(i["name"], i["data_type"]) for i in config["input"]] == [("num", "TYPE_FP32"), ("count", "TYPE_INT64")]
    num = triton.InferInput("num", [2, 3], "FP32")
    num.set_data_from_numpy(np.array([[1, 2, 3], [4, 3, 2]], dtype=np.float32))  # binary_data=True: the default
    count = triton.InferInput("count", [2, 1], "INT64")
    count.set_data_from_numpy(np.array([[4], [1]], dtype=np.int64))
    outputs = [triton.InferRequestedOutput("label"), triton.InferRequestedOutput("probabilities", binary_data=False)]
    result = client.infer("words", [num, count], outputs=outputs, request_id="r-1", headers=headers)
    assert result.get_response()["id"] == "r-1"
    labels = [v.decode() for v in result.as_numpy("label").tolist()]  # came back as binary BYTES
    as_json = post(served, "words", "score", {"inputs": {"num": [[1, 2, 3], [4, 3, 2]], "count": [[4], [1]]}})
    assert labels == as_json["label"]
    maps = [json.loads(v) for v in result.as_numpy("probabilities").tolist()]  # asked for as JSON
    assert maps == as_json["probabilities"]
    only_label = client.infer("words", [num, count], outputs=[triton.InferRequestedOutput("label")],
                              headers=headers)
    assert [o["name"] for o in only_label.get_response()["outputs"]] == ["label"]  # requested outputs only
    ints = triton.InferInput("x", [1, 4], "FP32")
    ints.set_data_from_numpy(np.array([[1, 2, 3, 4]], dtype=np.float32))
    plain = client.infer("ints", [ints], headers=served.auth("ints"))  # no outputs named: all of them
    assert plain.as_numpy("label").tolist() == post(served, "ints", "score", {"data": [[1, 2, 3, 4]]})["label"]
