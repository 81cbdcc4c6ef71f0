"""The pipe plumbing of the scoring workers (serving/worker.py, batch/worker.py): standard library only.

The workers run in a deployment environment's Python, where this package is not installed: they put
this folder on sys.path to import this one module. The protocol streams are the original stdin and
stdout; the script's own prints go to stderr (the log), so they never corrupt a frame.
"""

from __future__ import annotations

import os
import sys
from typing import IO


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
