"""Serve one scikit-learn classifier (20 features) several ways and load each with wrk.

Usage: python benchmarks/bench_serving.py [SECONDS]   (default 15 per run)

  (a) our endpoint host, ONNX conversion of the model (key auth, metrics on)
  (b) our endpoint host, the scikit-learn model behind an Azure-style scoring script
  (c) `mlflow models serve` of the same model (MLflow in benchmarks/.work/venv-mlflow only)
  ceiling: a minimal ASGI app on uvicorn (uvloop + httptools) returning a constant,
           and the same app calling onnxruntime in-process
  routing: a 90/10 split vs one deployment, both with key auth

Single-row and 100-row requests, concurrency 1 and 32, closed loop (wrk). Needs wrk (apt install wrk).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLOPS, WORK, scratch, tool_venv

AZ = "https://azuremlschemas.azureedge.net/latest"
FEATURES = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/", timeout: float = 120) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing answered on port {port}")


def train(root: Path, python: str) -> None:
    """Model files made by the MLflow venv's scikit-learn, so all three servers load the same model."""
    code = f"""
import json, joblib, numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skl2onnx import to_onnx
import mlflow.sklearn
x, y = make_classification(n_samples=2000, n_features={FEATURES}, random_state=0)
x = x.astype(np.float32)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
root = {str(root)!r}
import os
os.makedirs(root + "/sk", exist_ok=True); os.makedirs(root + "/onnx", exist_ok=True)
joblib.dump(model, root + "/sk/model.joblib")
onx = to_onnx(model, x[:1], options={{id(model.steps[-1][1]): {{"zipmap": False}}}}, target_opset=17)
open(root + "/onnx/model.onnx", "wb").write(onx.SerializeToString())
mlflow.sklearn.save_model(model, root + "/mlflow")
for rows in (1, 100):
    json.dump({{"data": x[:rows].tolist()}}, open(root + f"/body-{{rows}}.json", "w"))
    json.dump({{"dataframe_split": {{"columns": [f"f{{i}}" for i in range({FEATURES})], "data": x[:rows].tolist()}}}},
              open(root + f"/mlflow-{{rows}}.json", "w"))
"""
    subprocess.run([python, "-c", code], check=True)


SCORE = '''
import json, os
import joblib
import numpy as np

model = None

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sk", "model.joblib"))

def run(raw_data):
    data = np.array(json.loads(raw_data)["data"], dtype=np.float32)
    return model.predict_proba(data).tolist()
'''


def write_repo(repo: Path, models: Path) -> None:
    def w(rel: str, text: str) -> None:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)

    shutil.copytree(models / "onnx", repo / "models" / "onnx")
    shutil.copytree(models / "sk", repo / "models" / "sk")
    w("mlops.yaml", "workspaces:\n  bench: {path: .mlops/bench, runtime: process}\ndefault_workspace: bench\n"
                    "exclude: ['src/**', '**/conda*.yml']\n")
    w("models/onnx.yml", f"$schema: {AZ}/model.schema.json\nname: clf-onnx\nversion: '1'\npath: ./onnx\n")
    w("models/sk.yml", f"$schema: {AZ}/model.schema.json\nname: clf-sk\nversion: '1'\npath: ./sk\n")
    w("src/score.py", SCORE)
    w("env/conda.yml", "dependencies:\n  - pip\n  - pip: [scikit-learn, joblib, numpy]\n")
    w("env/env.yml", f"$schema: {AZ}/environment.schema.json\nname: sk\nversion: '1'\nimage: python\n"
                     "conda_file: ./conda.yml\n")
    limits = "request_settings: {max_concurrent_requests_per_instance: 64, request_timeout_ms: 60000}\n"
    endpoints = {"onnx": ("key", {"main": "onnx"}, {"main": 100}),
                 "script": ("key", {"main": "script"}, {"main": 100}),
                 "split": ("key", {"blue": "onnx", "green": "onnx"}, {"blue": 90, "green": 10}),
                 "single": ("aml_token", {"main": "onnx"}, {"main": 100})}
    for name, (auth, deps, traffic) in endpoints.items():
        w(f"endpoints/{name}.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: {name}\n"
                                   f"auth_mode: {auth}\ntraffic: {json.dumps(traffic)}\n")
        for dep, kind in deps.items():
            body = ("model: azureml:clf-onnx:1\n" if kind == "onnx" else
                    "model: azureml:clf-sk:1\nenvironment: azureml:sk:1\n"
                    "code_configuration: {code: ../src, scoring_script: score.py}\ninstance_count: 2\n")
            w(f"deployments/{name}-{dep}.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: {dep}\n"
                                               f"endpoint_name: {name}\ninstance_type: local\n{body}{limits}")


def wrk(url: str, body_file: Path, headers: dict[str, str], connections: int, seconds: int) -> dict[str, float]:
    lua = WORK / "wrk.lua"
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines += [f'local f = io.open("{body_file}", "r"); wrk.body = f:read("*a"); f:close()']
    lua.write_text("\n".join(lines) + "\n")
    threads = min(connections, 2)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(lua), "--latency",
                          url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "errors": float(errors.group(1)) if errors else 0.0}


MINIMAL = '''
import json, os, numpy as np, onnxruntime as ort
sess = ort.InferenceSession(os.environ["ONNX"], providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
CONSTANT = json.dumps({"ok": True}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive(); body += m.get("body", b"")
        if not m.get("more_body"): break
    if scope["path"] == "/constant":
        out = CONSTANT
    else:
        data = json.loads(body)["data"]
        label, proba = sess.run(None, {name: np.asarray(data, dtype=np.float32)})
        out = json.dumps({"label": label.tolist(), "probabilities": proba.tolist()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})
'''


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    work = scratch("serving")
    mlflow_bin = tool_venv("mlflow", ["mlflow", "scikit-learn", "skl2onnx", "joblib", "numpy"])
    train(work / "models", str(mlflow_bin / "python"))
    repo = work / "repo"
    write_repo(repo, work / "models")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([*MLOPS, "apply", str(repo), "--auto-approve"], check=True, stdout=subprocess.DEVNULL)
        info = json.loads((repo / ".mlops" / "bench" / "host.json").read_text())
        keys = {n: json.loads(subprocess.run([*MLOPS, "endpoint", "get-credentials", n, "-C", str(repo)],
                                             capture_output=True, text=True, check=True).stdout)["primaryKey"]
                for n in ("onnx", "script", "split", "single")}
        ports = {"mlflow": free_port(), "minimal": free_port()}
        env = {**os.environ, "ONNX": str(work / "models" / "onnx" / "model.onnx")}
        (work / "minimal.py").write_text(MINIMAL)
        procs.append(subprocess.Popen([sys.executable, "-m", "uvicorn", "minimal:app", "--port", str(ports["minimal"]),
                                       "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                                       "--no-access-log"], cwd=work, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        mlflow_model = str(work / "models" / "mlflow")
        procs.append(subprocess.Popen([str(mlflow_bin / "mlflow"), "models", "serve", "-m", mlflow_model,
                                       "-p", str(ports["mlflow"]), "--env-manager", "local"],
                                      # mlflow starts `uvicorn` from PATH: it must be the venv's
                                      env={**os.environ, "PATH": f"{mlflow_bin}:{os.environ['PATH']}"},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait_http(ports["minimal"])
        wait_http(ports["mlflow"], "/ping")
        host = info["url"]
        targets = {
            "(a) host, ONNX": (f"{host}/endpoints/onnx/score", "body", {"Authorization": f"Bearer {keys['onnx']}"}),
            "(b) host, script": (f"{host}/endpoints/script/score", "body",
                                 {"Authorization": f"Bearer {keys['script']}"}),
            "(c) mlflow serve": (f"http://127.0.0.1:{ports['mlflow']}/invocations", "mlflow", {}),
            "uvicorn+onnxruntime": (f"http://127.0.0.1:{ports['minimal']}/onnx", "body", {}),
            "uvicorn constant": (f"http://127.0.0.1:{ports['minimal']}/constant", "body", {}),
        }
        results: dict[tuple[str, int, int], dict[str, float]] = {}
        print(f"{'server':<22} {'rows':>4} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>7}")
        for rows in (1, 100):
            for conc in (1, 32):
                for label, (url, body, headers) in targets.items():
                    r = wrk(url, work / "models" / f"{body}-{rows}.json", headers, conc, seconds)
                    results[(label, rows, conc)] = r
                    print(f"{label:<22} {rows:>4} {conc:>4} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                          f"{r['errors']:>7.0f}", flush=True)
        print("\nratios")
        for rows in (1, 100):
            for conc in (1, 32):
                a, b, c = (results[(k, rows, conc)] for k in ("(a) host, ONNX", "(b) host, script", "(c) mlflow serve"))
                ceiling = results[("uvicorn+onnxruntime", rows, conc)]
                print(f"  rows={rows:<3} conc={conc:<2}  (a)/(c) {a['rps'] / c['rps']:6.1f}x req/s, "
                      f"p99 {a['p99'] / c['p99']:.3f} of (c)'s | (b)/(c) {b['rps'] / c['rps']:5.1f}x | "
                      f"(a)/uvicorn+onnxruntime "
                      f"{a['rps'] / ceiling['rps'] * 100:5.1f}%")
        # Throughput here drifts by ~20% between runs: interleave short rounds and compare medians.
        rounds: dict[str, list[float]] = {"split": [], "single": []}
        for _ in range(7):
            for name in ("split", "single"):  # both with the endpoint's key: the local workspace serves aml_token so
                measured = wrk(f"{host}/endpoints/{name}/score", work / "models" / "body-1.json",
                               {"Authorization": f"Bearer {keys[name]}"}, 32, 3)
                if measured["errors"]:
                    sys.exit(f"routing round on '{name}': {measured['errors']:.0f} non-2xx answers")
                rounds[name].append(measured["rps"])
        split, single = statistics.median(rounds["split"]), statistics.median(rounds["single"])
        print(f"\nrouting (median of 7 interleaved 3 s rounds, 1 row, concurrency 32): 90/10 split "
              f"{split:.0f} req/s vs one deployment {single:.0f} req/s: cost "
              f"{(1 - split / single) * 100:.1f}% (key auth and metrics on in both)")
    finally:
        for p in procs:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM) if p.args[0].endswith("mlflow") else p.terminate()
        subprocess.run([*MLOPS, "serve", "--stop", "-C", str(repo)], stdout=subprocess.DEVNULL, check=False)


if __name__ == "__main__":
    main()
