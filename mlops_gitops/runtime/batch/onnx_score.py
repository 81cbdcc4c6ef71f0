"""The scoring script of an ONNX batch deployment without one of its own (run by the batch worker).

Each file of a mini-batch is a table (CSV with or without a header, TSV, or Parquet where pandas
reads it); its columns feed the model's inputs: all of them, in order, for a model with one 2-D input,
or one column per input by the input's name. Each row answers one line, `row,prediction,file`, as
Azure's batch deployments of MLflow models write them; the prediction is the model's first output.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

try:  # faster CSV parsing where the environment has pandas; numpy's otherwise
    import pandas as pd
except ImportError:  # pragma: no cover - depends on the environment
    pd = None

TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_}
session: Any = None


def init() -> None:
    global session
    model_dir = Path(os.environ.get("AZUREML_MODEL_DIR") or ".")
    found = sorted(model_dir.rglob("*.onnx"))
    if len(found) != 1:
        raise RuntimeError(f"an ONNX batch deployment without a scoring script needs exactly one .onnx file in "
                           f"the model (found {len(found)})")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the engine runs one worker per core: no oversubscription
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(found[0]), options, providers=["CPUExecutionProvider"])


def _has_header(first: str, sep: str) -> bool:
    try:
        [float(v) for v in first.strip().split(sep) if v.strip()]
    except ValueError:
        return True
    return False


def _dtype() -> Any:
    inputs = session.get_inputs()
    return TYPES.get(inputs[0].type, np.float64) if len(inputs) == 1 else np.float64


def _read(path: str) -> tuple[list[str] | None, Any]:
    """(column names or None, the table: a DataFrame, or a 2-D numpy array)."""
    sep = "\t" if path.endswith((".tsv", ".tab")) else ","
    if path.endswith(".parquet"):
        if pd is None:
            raise RuntimeError(f"{Path(path).name}: Parquet files need pandas in the deployment's environment")
        frame = pd.read_parquet(path)
        return [str(c) for c in frame.columns], frame
    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline()
        header = _has_header(first, sep)
        names = next(csv.reader([first], delimiter=sep)) if header else None
        if pd is not None:
            f.seek(0)
            frame = pd.read_csv(f, sep=sep, header=0 if header else None)
            return names, frame
        if not header:
            f.seek(0)
        dtype = _dtype()
        try:  # numeric columns: parsed straight into the model's input type
            return names, np.loadtxt(f, delimiter=sep, ndmin=2, dtype=dtype if dtype is not np.object_ else None)
        except ValueError:  # text columns (inputs of type string): every value as read, cast per input
            f.seek(0)
            rows = list(csv.reader(f, delimiter=sep))[1 if header else 0:]
            return names, np.array(rows, dtype=object).reshape(len(rows), -1)


def _feeds(name: str, columns: list[str] | None, table: Any) -> dict[str, Any]:
    inputs = session.get_inputs()
    values = table.to_numpy() if hasattr(table, "to_numpy") else np.asarray(table)
    if len(inputs) == 1 and len(inputs[0].shape) == 2:
        wanted = inputs[0].shape[1]
        if isinstance(wanted, int) and values.shape[1] != wanted:
            raise ValueError(f"{name} has {values.shape[1]} column(s); the model's input '{inputs[0].name}' takes "
                             f"{wanted}")
        return {inputs[0].name: values.astype(TYPES.get(inputs[0].type, np.float32), copy=False)}
    if columns is None:
        raise ValueError(f"{name} has no header row: this model takes several inputs "
                         f"({', '.join(i.name for i in inputs)}), read from the columns of those names")
    missing = [i.name for i in inputs if i.name not in columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)} for the model's inputs")
    feeds = {}
    for i in inputs:
        column = values[:, columns.index(i.name)]
        dtype = TYPES.get(i.type, np.float32)
        feeds[i.name] = (column.astype(str) if dtype is np.object_ else column.astype(dtype)).reshape(-1, 1)
    return feeds


def _text(value: Any) -> str:
    if isinstance(value, dict):  # ZipMap
        return json.dumps({str(k): float(v) for k, v in value.items()})
    if isinstance(value, np.ndarray):
        return str(value.item()) if value.size == 1 else json.dumps(value.tolist())
    if isinstance(value, bytes):
        return value.decode()
    return str(value.item() if hasattr(value, "item") else value)


def run(mini_batch: list[str]) -> list[str]:
    lines: list[str] = []
    for path in mini_batch:
        name = Path(path).name
        columns, table = _read(path)
        if len(table) == 0:
            raise ValueError(f"{name} has no rows")
        first = session.run([session.get_outputs()[0].name], _feeds(name, columns, table))[0]
        shown = _quoted(name)
        if isinstance(first, np.ndarray) and first.dtype != np.object_ and first.ndim == 1:
            lines.extend(f"{i},{v},{shown}" for i, v in enumerate(first.tolist()))
        else:
            lines.extend(f"{i},{_quoted(_text(v))},{shown}" for i, v in enumerate(first))
    return lines


def _quoted(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()
