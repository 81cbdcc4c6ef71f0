"""The scoring script of an MLflow model deployed without one, as Azure ML serves such models.

Run by the worker in the model's own environment (built from its requirements.txt or conda.yaml), so
MLflow and the model's libraries are imported there, never by the toolkit. The model folder is given
by MLOPS_GITOPS_MLFLOW_MODEL, relative to AZUREML_MODEL_DIR. Bodies accepted, as Azure ML and MLflow's
scoring server accept them:

    {"input_data": {"columns": [...], "index": [...], "data": [[...]]}}   Azure (split orientation)
    {"input_data": [[...], ...]} or {"input_data": {"name": [...]}}       Azure (tensors)
    {"dataframe_split": {...}}, {"dataframe_records": [...]}, {"inputs": ...}   MLflow

Azure's format is answered with the bare list of predictions, MLflow's with {"predictions": [...]}.
"""

from __future__ import annotations

import json
import os
from typing import Any

model: Any = None


def init() -> None:
    global model
    import mlflow.pyfunc

    folder = os.path.join(os.environ["AZUREML_MODEL_DIR"], os.environ.get("MLOPS_GITOPS_MLFLOW_MODEL", "."))
    model = mlflow.pyfunc.load_model(os.path.normpath(folder))


def _frame(split: Any) -> Any:
    import pandas as pd

    if not isinstance(split, dict) or "data" not in split:
        raise ValueError("a split-oriented input needs 'data' (and 'columns', optionally 'index')")
    return pd.DataFrame(split["data"], columns=split.get("columns"), index=split.get("index"))


def _tensor(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {k: np.asarray(v) for k, v in value.items()}
    return np.asarray(value)


def parse(body: Any) -> tuple[Any, bool]:
    """The model input and whether the request used Azure's format."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object with input_data, dataframe_split, "
                         "dataframe_records or inputs")
    if "input_data" in body:
        data = body["input_data"]
        if isinstance(data, dict) and "data" in data:
            return _frame(data), True
        return _tensor(data), True
    if "dataframe_split" in body:
        return _frame(body["dataframe_split"]), False
    if "dataframe_records" in body:
        import pandas as pd

        return pd.DataFrame.from_records(body["dataframe_records"]), False
    if "inputs" in body or "instances" in body:
        return _tensor(body.get("inputs", body.get("instances"))), False
    raise ValueError(f"unknown request format (keys: {', '.join(sorted(body)) or 'none'}); send input_data "
                     "(Azure ML) or dataframe_split, dataframe_records, inputs (MLflow)")


def _plain(result: Any) -> Any:
    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # a DataFrame
        return result.to_dict(orient="records")
    if hasattr(result, "tolist"):  # an array or a Series
        return result.tolist()
    if isinstance(result, dict):
        return {k: _plain(v) for k, v in result.items()}
    return result


def run(raw: str) -> Any:
    data, azure = parse(json.loads(raw))
    predictions = _plain(model.predict(data))
    return predictions if azure else {"predictions": predictions}
