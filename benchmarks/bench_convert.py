"""ONNX conversion: parity and the latency ratio scikit-learn / onnxruntime, as `apply` measures them.

    python benchmarks/bench_convert.py

Trains a logistic regression, a random forest (100 trees) and gradient boosting on scikit-learn's
breast-cancer data (in a private venv with scikit-learn), declares each one's ONNX conversion in a tree
(x-gitops.convert, a data asset as the sample), applies it (the conversion environment, the conversion,
the parity check and the timings are the toolkit's), and prints what each converted version recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import MLOPS, compile_package, run, scratch, tool_venv

AZ = "https://azuremlschemas.azureedge.net/latest"
TRAIN = """
import csv, sys
from pathlib import Path
import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
out = Path(sys.argv[1])
X, y = load_breast_cancer(return_X_y=True)
with open(out / "data" / "train.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([f"f{i}" for i in range(X.shape[1])] + ["target"])
    w.writerows([*row, label] for row, label in zip(X.tolist(), y.tolist()))
for name, model in (("logistic-regression", LogisticRegression(max_iter=5000)),
                    ("random-forest", RandomForestClassifier(n_estimators=100, random_state=0)),
                    ("gradient-boosting", GradientBoostingClassifier(random_state=0))):
    (out / "models" / name).mkdir(parents=True)
    joblib.dump(model.fit(X, y), out / "models" / name / "model.joblib")
"""
MODELS = ("logistic-regression", "random-forest", "gradient-boosting")


def main() -> None:
    compile_package()
    root = scratch("convert") / "repo"
    (root / "data").mkdir(parents=True)
    python = tool_venv("convert-train", ["scikit-learn", "joblib"]) / "python"
    subprocess.run([str(python), "-c", TRAIN, str(root)], check=True)
    (root / "mlops.yaml").write_text("workspaces:\n  dev: {path: .mlops/dev, runtime: none}\ndefault_workspace: dev\n")
    (root / "data" / "train.yml").write_text(f"$schema: {AZ}/data.schema.json\nname: cancer-train\nversion: '1'\n"
                                             "type: uri_file\npath: ./train.csv\n")
    for name in MODELS:
        (root / "models" / f"{name}.yml").write_text(f"$schema: {AZ}/model.schema.json\nname: {name}\n"
                                                     f"version: '1'\npath: ./{name}\n")
        (root / "models" / f"{name}-onnx.yml").write_text(
            f"$schema: {AZ}/model.schema.json\nname: {name}-onnx\nx-gitops:\n  convert:\n    from: azureml:{name}:1\n"
            "    sample:\n      data: azureml:cancer-train:1\n      rows: 569\n      drop_columns: [target]\n"
            "    tolerance: {max_abs_diff: 1e-4, min_label_agreement: 0.99}\n")
    seconds = run([*MLOPS, "apply", "--auto-approve"], cwd=root, env={"MLOPS_GITOPS_PROGRESS": "off"})
    print(f"apply of 3 models and their ONNX conversions (environment build included): {seconds:.1f} s")
    print(f"{'model':<22} {'largest diff':>12} {'labels':>7}   {'1 row: sklearn / onnx':>26}   "
          f"{'1,000 rows: sklearn / onnx':>30}")
    for name in MODELS:
        shown = subprocess.run([*MLOPS, "model", "show", f"{name}-onnx:1"], cwd=root, capture_output=True,
                               text=True, check=True)
        p = json.loads(shown.stdout)["properties"]
        lat = {k.removeprefix("onnx.latency_ms."): v for k, v in p.items() if k.startswith("onnx.latency_ms.")}
        print(f"{name:<22} {p['onnx.parity.max_abs_diff']:>12.2g} {p['onnx.parity.label_agreement']:>7.1%}   "
              f"{lat['source_1_row']:>7.3f} / {lat['onnx_1_row']:.4f} ms = {p['onnx.speedup.1_row']:>6.1f}x   "
              f"{lat['source_1000_rows']:>7.2f} / {lat['onnx_1000_rows']:.3f} ms = "
              f"{p['onnx.speedup.1000_rows']:>6.1f}x")


if __name__ == "__main__":
    main()
