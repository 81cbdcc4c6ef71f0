"""The pipe plumbing of the scoring workers (serving/worker.py, batch/worker.py): standard library only.

The workers run in a deployment environment's Python, where this package is not installed: they put
this folder on sys.path to import this one module. The protocol streams are the original stdin and
stdout; the script's own prints go to stderr (the log), so they never corrupt a frame.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import struct
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

# the data collector's spool (serving/collector.py): a segment is a JSON line of the deployment's facts, then
# one frame per sample; the host and the scoring workers (custom collections) both write them
SPOOL_FRAME = struct.Struct(">BBdI")  # collection length, correlation ID length, time, body length


def protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stdout of the script joins stderr, which the caller sends to the log
    sys.stdout = os.fdopen(1, "w", buffering=1)
    return proto_in, proto_out


def read_exact(stream: IO[bytes], n: int) -> bytes | None:
    """n bytes, or None when the other side closed the pipe first."""
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def load_script(code_dir: str, script: str, module_name: str) -> Any:
    """The scoring script as a module, its init() called: what a worker runs `run()` of. Raises what it raises."""
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(code_dir, script))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script} from {code_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    if hasattr(module, "init"):
        module.init()
    return module


def write_spool_segment(spool: str, meta: dict[str, Any], samples: Sequence[tuple[str, str, float, bytes]]) -> str:
    """One flush of samples (collection, correlation ID, time, body) as a segment of the spool; it appears under
    its final name only once complete, so the converter never reads half of one."""
    parts = [json.dumps(meta).encode() + b"\n"]
    pack = SPOOL_FRAME.pack
    for collection, correlation_id, when, body in samples:
        label, cid = collection.encode(), correlation_id.encode()[:255]
        parts += [pack(len(label), len(cid), when, len(body)), label, cid, body]
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}.seg"
    tmp = os.path.join(spool, f".{name}.tmp")
    with open(tmp, "wb") as f:
        f.write(b"".join(parts))
    os.replace(tmp, os.path.join(spool, name))
    return os.path.join(spool, name)
