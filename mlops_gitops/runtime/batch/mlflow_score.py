"""The scoring script of an MLflow batch deployment without one of its own, as Azure ML generates it.

Run by the batch worker in the model's own environment, so MLflow, pandas and the model's libraries
are imported there, never by the toolkit. Each file of a mini-batch (CSV, TSV or Parquet) is read with
pandas; the columns the model's signature names are passed, by name (all of them without a signature).
Each row answers one line, `row,prediction,file`, as Azure writes MLflow batch predictions.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

model: Any = None


def init() -> None:
    global model
    import mlflow.pyfunc

    folder = os.path.join(os.environ["AZUREML_MODEL_DIR"], os.environ.get("MLOPS_GITOPS_MLFLOW_MODEL", "."))
    model = mlflow.pyfunc.load_model(os.path.normpath(folder))


def _read(path: str) -> Any:
    import pandas as pd

    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if path.endswith((".tsv", ".tab")) else ",")


def _columns(frame: Any, name: str) -> Any:
    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    if schema is None or not schema.has_input_names():
        return frame
    wanted = schema.input_names()
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)} of the model's signature")
    return frame[wanted]


def _text(value: Any) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def run(mini_batch: list[str]) -> list[str]:
    lines: list[str] = []
    for path in mini_batch:
        name = Path(path).name
        frame = _read(path)
        if len(frame) == 0:
            raise ValueError(f"{name} has no rows")
        predictions = model.predict(_columns(frame, name))
        values = predictions.to_numpy() if hasattr(predictions, "to_numpy") else predictions
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows((i, _text(v), name) for i, v in enumerate(values))
        lines.extend(buf.getvalue().splitlines())
    return lines
