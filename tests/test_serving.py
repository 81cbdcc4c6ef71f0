"""The endpoint host, for real: a process on 127.0.0.1 started by apply, driven over HTTP."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mlops_gitops.commands.apply import apply
from tests.helpers import Result
from tests.serving_helpers import SAMPLE, Host, served_tree

Cli = Callable[..., Result]
pytestmark = pytest.mark.slow


def apply_ok(root: Path) -> None:
    assert apply(str(root), auto_approve=True) == 0


def test_scoring_routes_auth_and_metrics(serving: Path) -> None:
    apply_ok(served_tree(serving, {"blue": 100}))
    host = Host(serving / ".mlops" / "dev")
    res = host.score(SAMPLE)
    assert res.status_code == 200 and res.headers["azureml-model-deployment"] == "blue"
    assert res.json()["label"] == [0, 1] and len(res.json()["probabilities"]) == 2
    assert host.score(SAMPLE, key="secondary").status_code == 200
    for key in (None, "wrong"):
        denied = host.score(SAMPLE, key=key)
        assert denied.status_code == 401 and "Bearer" in denied.json()["error"]
    assert host.score(SAMPLE, deployment="green").headers["azureml-model-deployment"] == "green"
    assert host.client.get("/v2/models/cancer").status_code == 401, "the model's metadata takes the endpoint's key"
    meta = host.client.get("/v2/models/cancer", headers=host.auth()).json()
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 30]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    v2 = host.client.post("/v2/models/cancer/infer", headers={"authorization": f"Bearer {host.keys[0]}"},
                          json={"inputs": [{"name": "X", "shape": [2, 30], "datatype": "FP32",
                                            "data": [v for row in SAMPLE["data"] for v in row]}]})
    assert v2.status_code == 200
    out = {o["name"]: o for o in v2.json()["outputs"]}
    assert out["label"]["data"] == [0, 1] and out["probabilities"]["shape"] == [2, 2]
    assert host.client.get("/v2/health/ready").json() == {"ready": True}
    assert host.client.get("/metrics").status_code == 401, "metrics take the workspace's metrics key"
    assert host.client.get("/metrics", headers=host.auth()).status_code == 401, "not an endpoint's key"
    metrics = host.metrics()
    assert 'mlops_requests_total{code="200",deployment="blue",endpoint="cancer"} 3.0' in metrics  # 2 scores + 1 V2
    assert 'mlops_request_duration_seconds_bucket{deployment="blue",endpoint="cancer"' in metrics


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "not valid JSON"),
    (b'{"data": [[1, 2, 3]]}', 400, "expects [-1, 30]"),
    (b'{"rows": []}', 400, "missing 'data'"),
    (b'{"data": [["a"] ]}', 400, "cannot be read as FP32"),
    (b'[1, 2]', 400, "must be a JSON object"),
])
def test_bad_requests_get_4xx_with_a_reason(serving: Path, body: bytes, status: int, message: str) -> None:
    apply_ok(served_tree(serving, {"blue": 100}))
    host = Host(serving / ".mlops" / "dev")
    res = host.score(None, raw=body)
    assert res.status_code == status and message in res.json()["error"]
    assert host.score(SAMPLE).status_code == 200, "the host keeps serving"


def test_unknown_names_and_oversized_bodies(serving: Path) -> None:
    apply_ok(served_tree(serving, {"blue": 100}))
    host = Host(serving / ".mlops" / "dev")
    assert host.client.post("/endpoints/nope/score", json=SAMPLE).status_code == 404
    res = host.score(SAMPLE, deployment="purple")
    assert res.status_code == 404 and "unknown deployment 'purple'" in res.json()["error"]
    big = b'{"data": [' + b",".join([b"[" + b",".join([b"1.0"] * 30) + b"]"] * 40000) + b"]}"
    res = host.score(None, raw=big)
    assert res.status_code == 413 and "limit" in res.json()["error"]
    v2 = host.client.post("/v2/models/cancer/infer", headers={"authorization": f"Bearer {host.keys[0]}"},
                          json={"inputs": [{"name": "X", "shape": [1, 30], "datatype": "INT64", "data": [1] * 30}]})
    assert v2.status_code == 400 and "expects FP32" in v2.json()["error"]
    assert host.score(SAMPLE).status_code == 200


def test_weighted_split_and_mirror(serving: Path) -> None:
    apply_ok(served_tree(serving, {"blue": 50, "green": 50}))
    host = Host(serving / ".mlops" / "dev")
    served = Counter(host.score(SAMPLE).headers["azureml-model-deployment"] for _ in range(400))
    assert 120 < served["blue"] < 280 and served["blue"] + served["green"] == 400  # 50/50 within ~8 sigma
    apply_ok(served_tree(serving, {"blue": 100, "green": 0}, mirror={"green": 40}))
    served = Counter(host.score(SAMPLE).headers["azureml-model-deployment"] for _ in range(300))
    assert served == Counter({"blue": 300}), "mirrored answers are discarded"
    host.wait_until(lambda s: s["deployments"]["cancer/green"]["inflight"] == 0)
    metrics = host.metrics()
    line = next(x for x in metrics.splitlines() if x.startswith("mlops_mirrored_requests_total{code=\"200\""))
    assert float(line.rsplit(" ", 1)[1]) > 60  # 40% of 300, far above zero


CONCURRENT = "request_settings: {max_concurrent_requests_per_instance: 16}\n"


def test_blue_green_switch_drops_no_request(serving: Path) -> None:
    root = served_tree(serving, {"blue": 100}, settings=CONCURRENT)
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    codes: Counter[int] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=host.url, timeout=30) as client:
            headers = {"authorization": f"Bearer {host.keys[0]}"}
            while not stop.is_set():
                code = client.post("/endpoints/cancer/score", json=SAMPLE, headers=headers).status_code
                with lock:
                    codes[code] += 1

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        host.wait_until(lambda s: s["deployments"]["cancer/blue"]["served"] > 200)
        apply_ok(served_tree(root, {"blue": 10, "green": 90}, settings=CONCURRENT))  # most traffic moves
        apply_ok(served_tree(root, {"green": 100}, settings=CONCURRENT))  # then all of it, blue at zero
        (root / "deployments" / "blue.yml").unlink()
        assert apply(str(root), auto_approve=True, prune=True) == 0  # blue stops after its traffic is gone
        host.wait_until(lambda s: s["deployments"]["cancer/green"]["served"] > 200)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(codes) == {200}, f"failed requests during the switch: {codes}"
    assert sum(codes.values()) > 400
    status = host.status()
    assert set(status["deployments"]) == {"cancer/green"}


def test_failed_readiness_keeps_previous_traffic(serving: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = served_tree(serving, {"blue": 100})
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    served_tree(root, {"blue": 20, "green": 80}, green="script",
                green_settings="environment_variables: {FAIL_INIT: '1'}\n")
    assert apply(str(root), auto_approve=True) == 1
    out = capsys.readouterr().out
    assert "online-deployment:cancer/green: FAILED" in out and "init refuses" in out
    assert "traffic:cancer: SKIPPED" in out
    # green keeps its previous, working version (ONNX); the failed script never replaced it
    assert host.status()["deployments"]["cancer/green"]["kind"] == "onnx"
    assert host.status()["endpoints"]["cancer"]["traffic"] == {"blue": 100}
    assert all(host.score(SAMPLE).status_code == 200 for _ in range(20))


def test_scoring_script_errors_crashes_limits_and_timeouts(serving: Path, tmp_path: Path) -> None:
    root = served_tree(serving, {"blue": 0, "green": 100}, green="script",
                       green_settings="request_settings: {request_timeout_ms: 1500, "
                                      "max_concurrent_requests_per_instance: 1}\n")
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    ok = host.score(SAMPLE)
    assert ok.status_code == 200 and ok.json()["rows"] == 2
    raised = host.score({"raise": True})
    assert raised.status_code == 500 and "ValueError: the script was asked to raise" in raised.json()["error"]
    assert host.score(SAMPLE).json()["pid"] == ok.json()["pid"], "the worker survived the script's error"
    crashed = host.score({"crash": True})
    assert crashed.status_code == 502 and "crashed" in crashed.json()["error"]
    after = host.score(SAMPLE)
    assert after.status_code == 200 and after.json()["pid"] != ok.json()["pid"], "a new worker took over"
    log = (root / ".mlops" / "dev" / "logs" / "cancer" / "green.log").read_text()
    assert "worker 0 crashed (exit code 3)" in log and "scored 2" in log
    # One request in flight fills the deployment: the next is refused at once.
    flag = tmp_path / "release"
    results: list[int] = []
    blocked = threading.Thread(target=lambda: results.append(host.score({"block": str(flag)}).status_code))
    blocked.start()
    host.wait_until(lambda s: s["deployments"]["cancer/green"]["inflight"] == 1)
    busy = host.score(SAMPLE)
    assert busy.status_code == 429 and "concurrent" in busy.json()["error"]
    flag.write_text("go")
    blocked.join(30)
    assert results == [200]
    # A request that outlives request_timeout_ms: 504, and the stuck worker is replaced.
    slow = host.score({"block": str(tmp_path / "never")})
    assert slow.status_code == 504 and "1500 ms" in slow.json()["error"]
    assert host.score(SAMPLE).status_code == 200


def test_keys_can_be_shown_and_regenerated(serving: Path, cli: Cli) -> None:
    root = served_tree(serving, {"blue": 100})
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    creds = json.loads(cli("endpoint", "get-credentials", "cancer", "-C", str(root)).out)
    assert creds == {"primaryKey": host.keys[0], "secondaryKey": host.keys[1]}
    assert cli("endpoint", "regenerate-keys", "cancer", "--key-type", "primary", "-C", str(root)).code == 0
    fresh = json.loads(cli("endpoint", "get-credentials", "cancer", "-C", str(root)).out)
    assert fresh["primaryKey"] != host.keys[0] and fresh["secondaryKey"] == host.keys[1]
    assert host.score(SAMPLE).status_code == 401, "the old primary key no longer works"
    assert host.score(SAMPLE, key=fresh["primaryKey"]).status_code == 200


def test_host_outlives_the_cli_and_restarts_from_its_config(serving: Path, cli: Cli) -> None:
    root = served_tree(serving, {"blue": 70, "green": 30})
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    os.kill(host.pid, 0)  # still running after apply returned
    res = cli("endpoint", "invoke", "cancer", "--request-file", str(Path(__file__).parent.parent / "example-repo" /
                                                                       "samples" / "request.json"), "-C", str(root))
    assert res.code == 0 and json.loads(res.out)["label"] == [0, 1]
    assert cli("serve", "--stop", "-C", str(root)).code == 0
    with pytest.raises(ProcessLookupError):
        os.kill(host.pid, 0)
    res = cli("apply", str(root), "--auto-approve")  # nothing changed, but the endpoints must be served
    assert res.code == 0 and "Started the endpoint host" in res.out
    assert cli("serve", "--stop", "-C", str(root)).code == 0
    res = cli("serve", "-C", str(root))
    assert res.code == 0 and "/endpoints/cancer/score" in res.out
    restarted = Host(root / ".mlops" / "dev")
    assert restarted.pid != host.pid
    assert restarted.status()["endpoints"]["cancer"]["traffic"] == {"blue": 70, "green": 30}
    assert restarted.score(SAMPLE).status_code == 200
    shown = json.loads(cli("endpoint", "show", "cancer", "-C", str(root)).out)
    assert shown["scoring_uri"] == f"{restarted.url}/endpoints/cancer/score"
    assert set(shown["deployments"]) == {"blue", "green"}


def test_example_repository_serves_both_kinds_of_deployment(serving: Path, cli: Cli) -> None:
    """The example's green deployment: an Azure ML scoring script that joblib-loads a scikit-learn model,
    run unchanged in a virtual environment built from the environment's conda file."""
    import shutil

    from tests.helpers import EXAMPLE

    root = serving
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlops"))
    res = cli("apply", str(root), "--auto-approve")
    assert res.code == 0, res.out + res.err
    assert "building environment" in res.err
    request = str(root / "samples" / "request.json")
    green = cli("endpoint", "invoke", "cancer", "--request-file", request, "--deployment", "green", "-C", str(root))
    assert green.code == 0 and json.loads(green.out) == [0, 1], green.err
    blue = cli("endpoint", "invoke", "cancer", "--request-file", request, "--deployment", "blue", "-C", str(root))
    assert json.loads(blue.out)["label"] == [0, 1]
    envs = [p for p in (root / ".mlops" / "dev" / "envs").iterdir() if not p.name.startswith(".")]
    assert len(envs) == 1 and (envs[0] / ".complete").exists()
    # A second apply reuses the environment: nothing is built again.
    assert "Nothing to do" in cli("apply", str(root), "--auto-approve").out


def test_one_host_for_many_endpoints_created_at_once(serving: Path) -> None:
    from tests.helpers import AZ, write

    root = served_tree(serving, {"blue": 100})
    for name in ("alpha", "beta", "gamma"):  # endpoints are created in parallel: one host must serve them all
        write(root / "endpoints" / f"{name}.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: {name}\n")
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    assert set(host.status()["endpoints"]) == {"cancer", "alpha", "beta", "gamma"}
    hosts = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_host_of(p, root)]
    assert len(hosts) == 1


def _is_host_of(proc: Path, root: Path) -> bool:
    try:
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    from mlops_gitops.backends.local.serving import HOST_MODULE

    return HOST_MODULE.encode() in cmdline and str(root / ".mlops" / "dev").encode() in cmdline


def _identity_model(path: Path) -> None:
    """A model with an int64 and a string input, each passed through (built with onnx.helper)."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Identity", ["ids"], ["ids_out"]), helper.make_node("Identity", ["words"], ["words_out"])],
        "passthrough",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None, 2]),
         helper.make_tensor_value_info("words", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info("ids_out", TensorProto.INT64, [None, 2]),
         helper.make_tensor_value_info("words_out", TensorProto.STRING, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))


def test_int64_and_string_tensors(serving: Path) -> None:
    from tests.helpers import AZ, write

    root = served_tree(serving, {"blue": 100})
    _identity_model(root / "models" / "multi" / "model.onnx")
    write(root / "models" / "multi.yml", f"$schema: {AZ}/model.schema.json\nname: multi\nversion: '1'\npath: ./multi\n")
    write(root / "endpoints" / "multi.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: multi\n"
                                            "auth_mode: aml_token\ntraffic: {main: 100}\n")
    write(root / "deployments" / "multi.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: main\n"
                                              "endpoint_name: multi\nmodel: azureml:multi:1\ninstance_type: x\n")
    apply_ok(root)
    host = Host(root / ".mlops" / "dev")
    meta = host.client.get("/v2/models/multi", headers=host.auth("multi")).json()
    assert meta["inputs"] == [{"name": "ids", "datatype": "INT64", "shape": [-1, 2]},
                              {"name": "words", "datatype": "BYTES", "shape": [-1]}]
    res = host.client.post("/endpoints/multi/score", json={"inputs": {"ids": [[1, 2], [3, 4]], "words": ["a", "b"]}})
    assert res.status_code == 401, "aml_token cannot be checked locally: the endpoint's keys are required"
    res = host.client.post("/endpoints/multi/score", json={"inputs": {"ids": [[1, 2], [3, 4]], "words": ["a", "b"]}},
                           headers=host.auth("multi"))
    assert res.status_code == 200 and res.json() == {"ids_out": [[1, 2], [3, 4]], "words_out": ["a", "b"]}
    v2 = host.client.post("/v2/models/multi/infer", headers=host.auth("multi"), json={"inputs": [
        {"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [7, 8]},
        {"name": "words", "shape": [1], "datatype": "BYTES", "data": ["hello"]}], "outputs": [{"name": "words_out"}]})
    assert v2.status_code == 200
    assert v2.json()["outputs"] == [{"name": "words_out", "datatype": "BYTES", "shape": [1], "data": ["hello"]}]
    missing = host.client.post("/endpoints/multi/score", json={"inputs": {"ids": [[1, 2]]}}, headers=host.auth("multi"))
    assert missing.status_code == 400 and "missing input(s): words" in missing.json()["error"]
    several = host.client.post("/endpoints/multi/score", json={"data": [[1, 2]]}, headers=host.auth("multi"))
    assert several.status_code == 400 and "several inputs" in several.json()["error"]
    wrong = host.client.post("/endpoints/multi/score", json={"inputs": {"ids": [["x", "y"]], "words": ["a"]}},
                             headers=host.auth("multi"))
    assert wrong.status_code == 400 and "INT64" in wrong.json()["error"]


@pytest.mark.parametrize("mode", ["aml_token", "aad_token"])
def test_token_modes_fail_closed_and_are_served_with_the_endpoint_keys(serving: Path, cli: Cli, mode: str) -> None:
    root = served_tree(serving, {"blue": 100})
    (root / "endpoints" / "cancer.yml").write_text(
        (root / "endpoints" / "cancer.yml").read_text().replace("auth_mode: key", f"auth_mode: {mode}"))
    planned = cli("plan", str(root))
    assert "AUTH001" in planned.err and f"auth_mode {mode}" in planned.err
    assert "only with the endpoint's keys" in planned.err
    apply_ok(root)
    host = Host(serving / ".mlops" / "dev")
    for key in (None, "wrong", "Bearer-less"):
        assert host.score(SAMPLE, key=key).status_code == 401, key
    assert host.score(SAMPLE).status_code == 200
    assert host.client.get("/v2/models/cancer/ready").status_code == 401
    creds = cli("endpoint", "get-credentials", "cancer", "-C", str(root))
    assert creds.code == 0 and json.loads(creds.out)["primaryKey"] == host.keys[0] and mode in creds.err


def test_metrics_take_the_workspace_metrics_key(serving: Path, cli: Cli) -> None:
    apply_ok(served_tree(serving, {"blue": 100}))
    ws = serving / ".mlops" / "dev"
    host = Host(ws)
    assert host.score(SAMPLE).status_code == 200
    creds = json.loads(cli("endpoint", "get-credentials", "--metrics", "-C", str(serving)).out)
    assert (ws / "metrics.key").read_text() == creds["metricsKey"]
    assert (ws / "metrics.key").stat().st_mode & 0o777 == 0o600
    for headers in ({}, {"authorization": "Bearer wrong"}, host.auth()):
        assert host.client.get("/metrics", headers=headers).status_code == 401
    assert "mlops_requests_total" in host.metrics()


def test_azure_sample_layout_model_folder_keeps_its_name_under_azureml_model_dir(serving: Path, cli: Cli) -> None:
    """Azure's sample shape: endpoints/online/managed/sample/ beside model-1/model/, the deployment naming
    `path: ../../../../model-1/model/`; the scoring script opens AZUREML_MODEL_DIR/model/<file> as on Azure."""
    from tests.helpers import AZ, init_repo, write

    root = serving
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['**/onlinescoring/**']\n")
    write(root / "model-1" / "model" / "sklearn_regression_model.pkl", "weights of the regression model\n")
    sample = root / "endpoints" / "online" / "managed" / "sample"
    write(sample / "onlinescoring" / "score.py", '''
import json, os

def init():
    global weights
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl")
    with open(path) as f:
        weights = f.read().strip()

def run(raw_data):
    return {"weights": weights, "rows": len(json.loads(raw_data)["data"])}
''')
    write(sample / "endpoint.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: my-endpoint\n"
                                   "auth_mode: key\n")
    write(sample / "blue-deployment.yml", f"""$schema: {AZ}/managedOnlineDeployment.schema.json
name: blue
endpoint_name: my-endpoint
model:
  path: ../../../../model-1/model/
code_configuration:
  code: ./onlinescoring/
  scoring_script: score.py
instance_type: Standard_DS3_v2
instance_count: 1
""")
    init_repo(root, "Azure's sample endpoint")
    res = cli("apply", str(root), "--auto-approve")
    assert res.code == 0, res.out + res.err
    write(root / "request.json", '{"data": [[1, 2], [3, 4]]}')
    res = cli("endpoint", "invoke", "my-endpoint", "--request-file", str(root / "request.json"),
              "--deployment", "blue", "-C", str(root))
    assert res.code == 0, res.err
    assert json.loads(res.out) == {"weights": "weights of the regression model", "rows": 2}
