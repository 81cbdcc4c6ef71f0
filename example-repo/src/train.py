"""Train the breast-cancer classifier and write it as ONNX and as a joblib pickle.

Usage: python src/train.py --data data/breast-cancer.csv --model-dir OUT [--c 1.0]
Writes OUT/onnx/model.onnx, OUT/onnx/labels.json, OUT/sklearn/model.joblib and OUT/metrics.json.
"""

import argparse
import csv
import json
from pathlib import Path

import joblib
import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    data = np.array(body, dtype=np.float64)
    return data[:, :-1].astype(np.float32), data[:, -1].astype(np.int64), header[:-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--c", type=float, default=1.0)
    args = parser.parse_args()
    x, y, features = load(args.data)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.c, max_iter=1000))
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, 1]
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, model.predict(x_test))), 4),
        "roc_auc": round(float(roc_auc_score(y_test, proba)), 4),
        "train_rows": int(len(y_train)),
    }
    out = Path(args.model_dir)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    (out / "sklearn").mkdir(parents=True, exist_ok=True)
    onx = to_onnx(model, x_train[:1], options={id(model.steps[-1][1]): {"zipmap": False}}, target_opset=17)
    (out / "onnx" / "model.onnx").write_bytes(onx.SerializeToString())
    (out / "onnx" / "labels.json").write_text(json.dumps({"0": "malignant", "1": "benign", "features": features}))
    joblib.dump(model, out / "sklearn" / "model.joblib")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
