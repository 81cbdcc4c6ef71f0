"""The Open Inference Protocol's binary tensor data extension, as Triton's clients send it by default.

A request may carry some inputs as raw bytes after its JSON (`Inference-Header-Content-Length` gives the
JSON's length, each such input `parameters.binary_data_size` its share, in the inputs' order); a response
carries as raw bytes the outputs asked for that way (`parameters.binary_data` on an output, or
`binary_data_output` on the request). Raw means little-endian, row-major; BOOL one byte; BYTES each element
as a 4-byte length and its bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from mlops_gitops.runtime.serving.errors import bad_request

HEADER = b"inference-header-content-length"
NUMPY: dict[str, Any] = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
                         "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
                         "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


def split(body: bytes, json_length: bytes | None) -> tuple[bytes, bytes]:
    """The JSON head and the binary tail of a request body."""
    if json_length is None:
        return body, b""
    try:
        n = int(json_length)
    except ValueError:
        raise bad_request("Inference-Header-Content-Length must be an integer") from None
    if not 0 <= n <= len(body):
        raise bad_request(f"Inference-Header-Content-Length {n} is outside the body of {len(body)} bytes")
    return body[:n], body[n:]


def attach(request: dict[str, Any], tail: bytes) -> None:
    """Give each input sent as binary its `data`, decoded from its share of the tail."""
    offset = 0
    for item in request.get("inputs") or []:
        if not isinstance(item, dict):
            continue
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(tail):
            raise bad_request(f"input '{item.get('name')}': binary_data_size {size} does not fit the "
                              f"{len(tail) - offset} bytes left after the JSON")
        item["data"] = decode(tail[offset:offset + size], str(item.get("datatype")), str(item.get("name")))
        offset += size
    if offset != len(tail):
        raise bad_request(f"{len(tail) - offset} bytes after the JSON belong to no input (binary_data_size)")


def decode(raw: bytes, datatype: str, name: str) -> Any:
    if datatype == "BYTES":
        out, i = [], 0
        while i < len(raw):
            if i + 4 > len(raw):
                raise bad_request(f"input '{name}': a BYTES element's length is cut short")
            (length,) = struct.unpack_from("<I", raw, i)
            i += 4
            if i + length > len(raw):
                raise bad_request(f"input '{name}': a BYTES element is longer than the data")
            out.append(raw[i:i + length].decode("utf-8", errors="replace"))
            i += length
        return out
    dtype = NUMPY.get(datatype)
    if dtype is None:
        raise bad_request(f"input '{name}': datatype {datatype} cannot be sent as binary data")
    if len(raw) % np.dtype(dtype).itemsize:
        raise bad_request(f"input '{name}': {len(raw)} bytes are not whole {datatype} values")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def wanted_binary(request: dict[str, Any]) -> tuple[bool, dict[str, bool]]:
    """Whether outputs go back as binary: the request's default and each requested output's own choice."""
    default = bool((request.get("parameters") or {}).get("binary_data_output", False))
    own = {str(o.get("name")): bool(o["parameters"]["binary_data"]) for o in request.get("outputs") or []
           if isinstance(o, dict) and isinstance(o.get("parameters"), dict) and "binary_data" in o["parameters"]}
    return default, own


def encode(output: dict[str, Any]) -> bytes:
    """The raw bytes of one output (as v2_outputs lays it out), its `data` replaced by binary_data_size."""
    data = output.pop("data")
    if output["datatype"] == "BYTES":
        parts = []
        for v in data:
            b = v if isinstance(v, bytes) else str(v).encode()
            parts += [struct.pack("<I", len(b)), b]
        raw = b"".join(parts)
    else:
        raw = np.ascontiguousarray(np.asarray(data, dtype=NUMPY[output["datatype"]])).astype(
            np.dtype(NUMPY[output["datatype"]]).newbyteorder("<"), copy=False).tobytes()
    output.setdefault("parameters", {})["binary_data_size"] = len(raw)
    return raw
