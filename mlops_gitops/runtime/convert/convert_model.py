"""Convert a model to ONNX and check parity: run by the conversion environment's Python (its converters,
the model's own libraries), never imported by the toolkit.

    python convert_model.py REQUEST.json

REQUEST: {"model_dir", "sample": [CSV paths], "drop_columns", "rows", "output", "converter", "target_opset"}.
Writes OUTPUT/model.onnx and OUTPUT/conversion_report.json: the estimator, the converter, the largest
absolute difference of outputs and the share of equal labels on the sample, and the median latency of
the source model and of onnxruntime for 1 row and 1,000 rows. A converter that refuses the model exits 3
with its own reason on stderr; a model that cannot be read exits 2.
"""

from __future__ import annotations

import csv
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def fail(code: int, message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(code)


def load_model(model_dir: Path) -> tuple[Any, str]:
    """The estimator of a pickled model (joblib or pickle) or of an MLflow model's sklearn flavour."""
    mlmodel = next(iter(sorted(model_dir.rglob("MLmodel"))), None)
    if mlmodel is not None:
        text = mlmodel.read_text()
        name = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                     if line.strip().startswith("pickled_model:")), "model.pkl")
        candidates = [mlmodel.parent / name]
    else:
        candidates = sorted(p for p in model_dir.rglob("*") if p.suffix in (".joblib", ".pkl", ".pickle"))
    if len(candidates) != 1 or not candidates[0].is_file():
        fail(2, f"the source model must hold exactly one pickled estimator (.joblib, .pkl or an MLflow sklearn "
                f"flavour); found {', '.join(p.name for p in candidates) or 'none'}")
    path = candidates[0]
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path), path.name
        with path.open("rb") as f:
            return pickle.load(f), path.name
    except Exception as exc:
        fail(2, f"cannot load {path.name}: {type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")


def read_sample(files: list[str], drop: list[str], rows: int,
                label: str | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """`rows` seeded rows of the CSV files as numbers (less the dropped columns and the label), with the
    feature names and, where a label column is named, its values."""
    header: list[str] | None = None
    body: list[list[str]] = []
    for name in files:
        with open(name, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                continue
            if header is None:
                header = first
            elif first != header:
                fail(2, f"{Path(name).name}: its columns differ from the sample's first file")
            body.extend(reader)
    if header is None or not body:
        fail(2, "the sample has no rows")
    assert header is not None
    missing = [c for c in drop if c not in header]
    if missing:
        fail(2, f"drop_columns names {', '.join(missing)}, not columns of the sample ({', '.join(header)})")
    if label is not None and label not in header:
        fail(2, f"the label column {label!r} is not a column of the data ({', '.join(header)})")
    keep = [i for i, c in enumerate(header) if c not in drop and c != label]
    picked = np.random.default_rng(0).permutation(len(body))[:rows]  # seeded: the same rows every time
    try:
        x = np.array([[float(body[r][i]) for i in keep] for r in picked], dtype=np.float64)
    except ValueError as exc:
        fail(2, f"the sample has a value that is not a number ({exc}); list non-feature columns in drop_columns")
    labels = [body[r][header.index(label)] for r in picked] if label is not None else []
    return x, [header[i] for i in keep], labels


def convert(model: Any, x: np.ndarray, converter: str, opset: int | None) -> tuple[bytes, str]:
    module = type(model).__module__.split(".")[0]
    chosen = converter if converter != "auto" else ("onnxmltools" if module in ("lightgbm", "xgboost") else "skl2onnx")
    try:
        if chosen == "skl2onnx":
            from skl2onnx import convert_sklearn
            from skl2onnx.common.data_types import FloatTensorType

            onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, x.shape[1]]))],
                                  target_opset=opset)
        else:
            import onnxmltools
            from onnxmltools.convert.common.data_types import FloatTensorType as MLFloat

            fn = onnxmltools.convert_lightgbm if module == "lightgbm" else onnxmltools.convert_xgboost
            onx = fn(model, initial_types=[("X", MLFloat([None, x.shape[1]]))], target_opset=opset)
    except Exception as exc:  # the converter's own reason is the answer: its first line, then all of it
        first = (str(exc).strip().splitlines() or [""])[0][:400]
        fail(3, f"{chosen} cannot convert {type(model).__name__}: {type(exc).__name__}: {first}\n\n{exc}")
    return onx.SerializeToString(), chosen


def _probabilities(value: Any, classes: list[Any]) -> np.ndarray:
    if isinstance(value, list):  # ZipMap: one map per row, keyed by class label
        return np.array([[row[c] for c in classes] for row in value], dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _median_ms(fn: Any, budget_s: float = 0.3, most: int = 2000) -> float:
    fn()  # warm
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < most and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> int:
    request = json.loads(Path(sys.argv[1]).read_text())
    import onnxruntime as ort

    model, source_file = load_model(Path(request["model_dir"]))
    x, features, _ = read_sample(request["sample"], request.get("drop_columns") or [], int(request.get("rows", 200)))
    onnx_bytes, chosen = convert(model, x, request.get("converter", "auto"), request.get("target_opset"))
    out = Path(request["output"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(onnx_bytes)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    x32 = x.astype(np.float32)
    outputs = session.run(None, {"X": x32})
    classifier = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    report: dict[str, Any] = {"estimator": f"{type(model).__module__}.{type(model).__name__}",
                              "source_file": source_file, "converter": chosen, "rows": len(x),
                              "features": features, "outputs": [o.name for o in session.get_outputs()]}
    if classifier:
        classes = list(model.classes_)
        expected_labels = model.predict(x)
        report["label_agreement"] = float(np.mean(np.asarray(outputs[0]).ravel() == np.asarray(expected_labels)))
        probs = _probabilities(outputs[1], classes) if len(outputs) > 1 else None
        report["max_abs_diff"] = (float(np.max(np.abs(probs - model.predict_proba(x)))) if probs is not None
                                  else None)
        source_fn = model.predict_proba
    else:
        report["label_agreement"] = None
        report["max_abs_diff"] = float(np.max(np.abs(np.asarray(outputs[0], dtype=np.float64).reshape(len(x), -1)
                                                     - np.asarray(model.predict(x)).reshape(len(x), -1))))
        source_fn = model.predict
    thousand = np.resize(x, (1000, x.shape[1]))
    one = x[:1]
    report["latency_ms"] = {
        "source_1_row": _median_ms(lambda: source_fn(one)),
        "onnx_1_row": _median_ms(lambda: session.run(None, {"X": one.astype(np.float32)})),
        "source_1000_rows": _median_ms(lambda: source_fn(thousand), most=30),
        "onnx_1000_rows": _median_ms(lambda: session.run(None, {"X": thousand.astype(np.float32)}), most=30)}
    (out / "conversion_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
