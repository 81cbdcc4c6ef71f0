"""Permutation feature importance of a model version on evaluation data: run by the model's environment's
Python (as convert_model.py, beside it, is), never imported by the toolkit.

    python importance.py REQUEST.json

REQUEST: {"model_dir", "data": [CSV paths], "label", "drop_columns", "rows", "repeats", "scoring", "output"}.
Writes OUTPUT (JSON): the scorer, the model's score on the rows, and per feature the mean and the standard
deviation of the score's drop when that feature's column is shuffled, most important first. A model that
cannot be read exits 2 with the reason on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from convert_model import fail, load_model, read_sample
from sklearn.base import BaseEstimator
from sklearn.inspection import permutation_importance


class Predicting(BaseEstimator):  # type: ignore[misc]
    """A model that only predicts (an ONNX session) as the estimator scikit-learn's scorers call."""

    def __init__(self, predict_fn: Any = None) -> None:
        self.predict_fn = predict_fn

    def fit(self, *_: Any) -> Predicting:
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_fn(x)).ravel()


def onnx_model(path: Path) -> tuple[Predicting, bool]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, first = session.get_inputs(), session.get_outputs()[0]

    def predict(x: np.ndarray) -> Any:
        x32 = x.astype(np.float32)
        feeds = ({inputs[0].name: x32} if len(inputs) == 1 else  # one tensor, or one input per column
                 {i.name: x32[:, [n]] for n, i in enumerate(inputs)})
        return session.run([first.name], feeds)[0]

    return Predicting(predict), first.type in ("tensor(int64)", "tensor(int32)", "tensor(string)")


def model_of(model_dir: Path) -> tuple[Any, bool]:
    """The estimator and whether it classifies: a pickled or MLflow scikit-learn model, else one ONNX file."""
    onnx = sorted(model_dir.rglob("*.onnx"))
    pickled = [p for p in model_dir.rglob("*") if p.suffix in (".joblib", ".pkl", ".pickle") or p.name == "MLmodel"]
    if onnx and not pickled:
        if len(onnx) != 1:
            fail(2, f"the model holds {len(onnx)} ONNX files; its importance needs one")
        return onnx_model(onnx[0])
    model, _ = load_model(model_dir)
    return model, hasattr(model, "classes_")


def main() -> int:
    request = json.loads(Path(sys.argv[1]).read_text())
    model, classifier = model_of(Path(request["model_dir"]))
    x, features, raw = read_sample(request["data"], request.get("drop_columns") or [], int(request["rows"]),
                                   request["label"])
    try:
        y: np.ndarray = np.asarray([float(v) for v in raw])
    except ValueError:
        y = np.asarray(raw)
    scoring = request.get("scoring") or ("accuracy" if classifier else "r2")
    found = permutation_importance(model, x, y, scoring=scoring, n_repeats=int(request["repeats"]), random_state=0)
    from sklearn.metrics import get_scorer

    ranked = sorted(zip(features, found.importances_mean, found.importances_std, strict=True), key=lambda f: -f[1])
    report = {"scoring": scoring, "baseline": round(float(get_scorer(scoring)(model, x, y)), 6), "rows": len(x),
              "repeats": int(request["repeats"]),
              "features": [{"name": n, "mean": round(float(m), 6), "std": round(float(s), 6)} for n, m, s in ranked]}
    Path(request["output"]).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
