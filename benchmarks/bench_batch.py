"""Batch scoring: `batch invoke` of an ONNX deployment against a plain loop over the same files.

    python benchmarks/bench_batch.py [FILES] [ROWS_PER_FILE]      (default 100 x 10,000 rows of 20 features)

The plain loop is one Python process that reads each CSV (numpy's loadtxt, or pandas where it is
installed and faster) and calls onnxruntime once per file. `batch invoke` runs the endpoint's
deployment with max_concurrency_per_instance 2 on the same files: the whole command, start-up,
records and the predictions file included. Its fixed overhead is a job of one one-row file.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import MLOPS, compile_package, run, scratch

AZ = "https://azuremlschemas.azureedge.net/latest"
FEATURES = 20


def model(path: Path) -> Path:
    rng = np.random.default_rng(1)
    node = h.make_node("LinearClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
                       coefficients=rng.normal(size=2 * FEATURES).round(3).tolist(), intercepts=[0.1, -0.1],
                       post_transform="SOFTMAX", classlabels_ints=[0, 1])
    graph = h.make_graph([node], "linear", [h.make_tensor_value_info("X", T.FLOAT, [None, FEATURES])],
                         [h.make_tensor_value_info("label", T.INT64, [None]),
                          h.make_tensor_value_info("probabilities", T.FLOAT, [None, 2])])
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(path))
    return path


def data(folder: Path, files: int, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    header = ",".join(f"f{i}" for i in range(FEATURES))
    for i in range(files):
        np.savetxt(folder / f"part-{i:03d}.csv", rng.normal(size=(rows, FEATURES)), delimiter=",", fmt="%.5f",
                   header=header, comments="")


def tree(root: Path) -> Path:
    model(root / "models" / "linear" / "model.onnx")
    (root / "mlops.yaml").write_text("workspaces:\n  dev: {path: .mlops/dev, runtime: process}\n"
                                     "default_workspace: dev\n")
    (root / "models" / "linear.yml").write_text(f"$schema: {AZ}/model.schema.json\nname: linear\nversion: '1'\n"
                                                "path: ./linear\n")
    (root / "endpoints").mkdir()
    (root / "endpoints" / "scores.yml").write_text(f"$schema: {AZ}/batchEndpoint.schema.json\nname: scores\n"
                                                   "defaults: {deployment_name: onnx}\n")
    (root / "deployments").mkdir()
    (root / "deployments" / "onnx.yml").write_text(
        f"$schema: {AZ}/modelBatchDeployment.schema.json\nname: onnx\nendpoint_name: scores\ntype: model\n"
        "model: azureml:linear:1\nresources: {instance_count: 1}\n"
        "settings: {max_concurrency_per_instance: 2, mini_batch_size: 2, output_action: append_row}\n")
    return root


def reader() -> tuple[str, object]:
    try:
        import pandas as pd

        return "pandas.read_csv", lambda p: pd.read_csv(p, dtype=np.float32).to_numpy()
    except ImportError:
        return "numpy.loadtxt", lambda p: np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)


def plain_loop(files: list[Path], model_path: Path) -> tuple[float, int]:
    _, read = reader()
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    rows = 0
    for f in files:
        x = read(f)  # type: ignore[operator]
        rows += len(session.run(["label"], {"X": x})[0])
    return time.perf_counter() - start, rows


LOOP = """
import sys, time
import numpy as np, onnxruntime as ort
try:
    import pandas as pd
    read = lambda p: pd.read_csv(p, dtype=np.float32).to_numpy()
except ImportError:
    read = lambda p: np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
rows = sum(len(session.run(["label"], {"X": read(f)})[0]) for f in sys.argv[2:])
assert rows > 0
"""


def main() -> None:
    files, rows = (int(sys.argv[1]) if len(sys.argv) > 1 else 100), (int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    compile_package()
    work = scratch("batch")
    root = tree(work / "repo")
    data(work / "inputs", files, rows)
    (work / "one").mkdir()
    (work / "one" / "row.csv").write_text(",".join(f"f{i}" for i in range(FEATURES)) + "\n" +
                                          ",".join(["0.5"] * FEATURES) + "\n")
    env = {"MLOPS_GITOPS_PROGRESS": "off"}
    run([*MLOPS, "apply", "--auto-approve"], cwd=root, env=env)
    run([*MLOPS, "batch", "invoke", "scores", "--input", str(work / "one")], cwd=root, env=env)  # warm caches
    overhead = min(run([*MLOPS, "batch", "invoke", "scores", "--input", str(work / "one")], cwd=root, env=env)
                   for _ in range(3))
    inputs = sorted((work / "inputs").glob("*.csv"))
    name, _ = reader()
    loop_s, loop_rows = plain_loop(inputs, root / "models" / "linear" / "model.onnx")
    batch_s = run([*MLOPS, "batch", "invoke", "scores", "--input", str(work / "inputs")], cwd=root, env=env)
    loop_again, _ = plain_loop(inputs, root / "models" / "linear" / "model.onnx")  # both sides of the batch run
    loop_s = min(loop_s, loop_again)
    model_path = str(root / "models" / "linear" / "model.onnx")
    loop_process = min(run([sys.executable, "-c", LOOP, model_path, *map(str, inputs)]) for _ in range(2))
    total = files * rows
    assert loop_rows == total
    print(f"{files} files x {rows} rows x {FEATURES} features ({total:,} rows) on {os.cpu_count()} cores")
    print(f"  plain loop ({name} + onnxruntime per file): {loop_s:.2f} s = {total / loop_s:,.0f} rows/s")
    print(f"  plain loop as its own process (start-up included): {loop_process:.2f} s = "
          f"{total / loop_process:,.0f} rows/s")
    print(f"  batch invoke (2 workers, whole command):    {batch_s:.2f} s = {total / batch_s:,.0f} rows/s "
          f"= {loop_s / batch_s:.2f}x the loop's inner time, {loop_process / batch_s:.2f}x its process "
          "(goal >= 1.5x)")
    print(f"  fixed overhead of a job (one 1-row file, whole command): {overhead:.2f} s (goal < 1 s)")


if __name__ == "__main__":
    main()
