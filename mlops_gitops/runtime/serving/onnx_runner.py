"""ONNX deployments without a scoring script: onnxruntime in the host process.

Small batches run inline on the event loop (a logistic regression takes ~20 µs, less than a thread
hop); larger ones in a thread, where onnxruntime releases the GIL.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mlops_gitops.runtime.serving.errors import bad_request

INLINE_ROWS = 256

# ONNX tensor type -> (numpy dtype, Open Inference Protocol datatype)
TYPES: dict[str, tuple[Any, str]] = {
    "tensor(float)": (np.float32, "FP32"),
    "tensor(double)": (np.float64, "FP64"),
    "tensor(float16)": (np.float16, "FP16"),
    "tensor(int64)": (np.int64, "INT64"),
    "tensor(int32)": (np.int32, "INT32"),
    "tensor(int16)": (np.int16, "INT16"),
    "tensor(int8)": (np.int8, "INT8"),
    "tensor(uint8)": (np.uint8, "UINT8"),
    "tensor(bool)": (np.bool_, "BOOL"),
    "tensor(string)": (np.object_, "BYTES"),
}
V2_TO_NUMPY = {v2: dtype for dtype, v2 in TYPES.values()}


def _shape(dims: list[Any]) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in dims]


class OnnxRunner:
    kind = "onnx"

    def __init__(self, model_dir: Path) -> None:
        files = sorted(model_dir.rglob("*.onnx"))
        if len(files) != 1:
            found = ", ".join(p.name for p in files) or "none"
            raise ValueError(f"an ONNX deployment without a scoring script needs exactly one .onnx file "
                             f"in the model (found: {found})")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(files[0]), options, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()
        self.input_types = {i.name: TYPES.get(i.type, (None, i.type)) for i in self.inputs}
        self.input_shapes = {i.name: _shape(i.shape) for i in self.inputs}
        self.output_names = [o.name for o in self.outputs]

    def metadata(self) -> dict[str, Any]:
        def port(p: Any) -> dict[str, Any]:
            return {"name": p.name, "datatype": TYPES.get(p.type, (None, p.type))[1], "shape": _shape(p.shape)}

        return {"platform": "onnxruntime_onnx", "inputs": [port(p) for p in self.inputs],
                "outputs": [port(p) for p in self.outputs]}

    def _tensor(self, name: str, data: Any, datatype: str | None = None, shape: list[int] | None = None) -> Any:
        dtype = self.input_types[name][0]
        if datatype is not None and V2_TO_NUMPY.get(datatype) is not dtype:
            expected = self.input_types[name][1]
            raise bad_request(f"input '{name}' has datatype {datatype}; the model expects {expected}")
        try:
            array = np.asarray(data, dtype=dtype)
            if dtype is not None and np.issubdtype(dtype, np.integer):  # 1.5 must not become 1 unnoticed
                given = np.asarray(data)
                if given.dtype.kind == "f" and not np.array_equal(given, np.trunc(given)):
                    raise ValueError("it holds values that are not whole numbers")
        except (ValueError, TypeError) as exc:
            raise bad_request(f"input '{name}' cannot be read as {self.input_types[name][1]}: {exc}") from None
        if shape is not None:
            try:
                array = array.reshape(shape)
            except ValueError:
                raise bad_request(f"input '{name}': {array.size} values do not fit shape {shape}") from None
        expected_shape = self.input_shapes[name]
        if array.ndim == len(expected_shape) - 1 and len(expected_shape) >= 2:
            array = array.reshape(1, *array.shape)  # one row sent without its batch dimension
        if array.ndim != len(expected_shape) or any(
                e != -1 and e != a for e, a in zip(expected_shape, array.shape, strict=False)):
            raise bad_request(f"input '{name}' has shape {list(array.shape)}; the model expects {expected_shape} "
                              "(-1: any size)")
        return array

    async def run(self, feeds: dict[str, Any]) -> list[Any]:
        missing = [i.name for i in self.inputs if i.name not in feeds]
        if missing:
            raise bad_request(f"missing input(s): {', '.join(missing)}")
        rows = next(iter(feeds.values())).shape[0] if feeds else 0
        if rows <= INLINE_ROWS:
            return self._run(feeds)
        return await asyncio.to_thread(self._run, feeds)

    def _run(self, feeds: dict[str, Any]) -> list[Any]:
        try:
            return list(self.session.run(None, feeds))
        except Exception as exc:  # onnxruntime raises its own errors for bad inputs
            raise bad_request(f"the model rejected the input: {str(exc).splitlines()[0][:300]}") from None

    def feeds_from_azure(self, body: Any) -> dict[str, Any]:
        """Azure-style bodies: {"data": rows}, {"input_data": {"data": rows}} or {"inputs": {name: rows}}."""
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object such as {\"data\": [[...]]}")
        if "inputs" in body and isinstance(body["inputs"], dict):
            unknown = sorted(set(body["inputs"]) - set(self.input_types))
            if unknown:
                raise bad_request(f"unknown input(s) {', '.join(unknown)}; the model takes "
                                  f"{', '.join(self.input_types)}")
            return {name: self._tensor(name, value) for name, value in body["inputs"].items()}
        data = body.get("data")
        split = body.get("input_data")
        if data is None and isinstance(split, dict):
            data = split.get("data")
            columns = split.get("columns")
            if isinstance(columns, list) and isinstance(data, list) and len(self.inputs) > 1:
                # pandas' split orientation, as Azure's and MLflow's clients send tables
                data = [dict(zip(columns, row, strict=False)) if isinstance(row, list) else row for row in data]
        if data is None:
            raise bad_request("missing 'data' (or 'input_data.data', or 'inputs' by name) in the request body")
        if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
            return self._from_records(data)
        if len(self.inputs) != 1:
            raise bad_request(f"this model takes several inputs ({', '.join(self.input_types)}): send rows as "
                              "objects by input name ({\"data\": [{name: value, ...}]}), or {\"inputs\": {name: rows}}")
        return {self.inputs[0].name: self._tensor(self.inputs[0].name, data)}

    def _from_records(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Rows as objects keyed by input name (a table's columns, as converters name inputs after them)."""
        missing = [name for name in self.input_types if name not in rows[0]]
        if missing:
            raise bad_request(f"the rows lack input(s) {', '.join(missing)}; the model takes "
                              f"{', '.join(self.input_types)}")
        feeds = {}
        for name in self.input_types:
            try:
                column = [row[name] for row in rows]
            except KeyError:
                raise bad_request(f"a row lacks input '{name}'") from None
            shape = self.input_shapes[name]
            if len(shape) == 2 and shape[1] in (1, -1) and all(not isinstance(v, list) for v in column):
                column = [[v] for v in column]  # one column per input: [None, 1]
            feeds[name] = self._tensor(name, column)
        return feeds

    def azure_response(self, outputs: list[Any]) -> dict[str, Any]:
        # numeric arrays stay numpy: the host's JSON encoder writes them directly
        return {name: value if isinstance(value, np.ndarray) and value.dtype != np.object_ else _to_list(value)
                for name, value in zip(self.output_names, outputs, strict=True)}

    def feeds_from_v2(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise bad_request("an inference request needs 'inputs': a list of {name, shape, datatype, data}")
        feeds: dict[str, Any] = {}
        for item in body["inputs"]:
            if not isinstance(item, dict) or not {"name", "shape", "datatype", "data"} <= set(item):
                raise bad_request("each input needs 'name', 'shape', 'datatype' and 'data'")
            name = item["name"]
            if name not in self.input_types:
                raise bad_request(f"unknown input '{name}'; the model takes {', '.join(self.input_types)}")
            if not isinstance(item["shape"], list) or not all(isinstance(d, int) for d in item["shape"]):
                raise bad_request(f"input '{name}': shape must be a list of integers")
            feeds[name] = self._tensor(name, item["data"], item["datatype"], item["shape"])
        return feeds

    def v2_outputs(self, outputs: list[Any], wanted: list[str] | None) -> list[dict[str, Any]]:
        result = []
        for o, value in zip(self.outputs, outputs, strict=True):
            if wanted and o.name not in wanted:
                continue
            if isinstance(value, list):  # a sequence (ZipMap's maps): one JSON text per element, as BYTES
                result.append({"name": o.name, "datatype": "BYTES", "shape": [len(value)],
                               "data": [json.dumps(v) for v in _to_list(value)]})
                continue
            array = np.asarray(value)
            result.append({"name": o.name, "datatype": TYPES.get(o.type, (None, "BYTES"))[1],
                           "shape": list(array.shape),
                           "data": array.reshape(-1) if array.dtype != np.object_ else _to_list(array.reshape(-1))})
        return result


def _to_list(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == np.object_:
            return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        return value.tolist()
    if isinstance(value, list):  # ZipMap's outputs: maps with int64 or string keys, as JSON objects
        return [{str(k): float(v) for k, v in item.items()} if isinstance(item, dict) else _to_list(item)
                for item in value]
    return value
