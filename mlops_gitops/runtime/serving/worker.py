"""A scoring-script worker, run by the deployment environment's Python: standard library only.

    python worker.py CODE_DIR SCORING_SCRIPT

Protocol on the original stdin/stdout: the host sends a 4-byte big-endian length and the raw request
body; the worker answers one status byte (0 ok, 1 the script raised) plus a length-prefixed payload.
The first answer, after init(), says whether the worker is ready. The script's own prints go to the
deployment log (fds 1 and 2 are pointed there), so they never corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import traceback
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_gitops.runtime.workerio import load_script, protocol_streams, read_exact
else:  # run by a Python without this package: the one module, from the folder above
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from workerio import load_script, protocol_streams, read_exact

    del sys.path[0]


def _send(stream: IO[bytes], status: int, payload: bytes) -> None:
    stream.write(struct.pack(">BI", status, len(payload)) + payload)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def main() -> int:
    code_dir, script = sys.argv[1], sys.argv[2]
    proto_in, proto_out = protocol_streams()
    sys.path.insert(0, code_dir)
    # Azure's modules that scoring scripts import (azureml.ai.monitoring's Collector), after the script's own
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims"))
    os.chdir(code_dir)
    try:
        run = load_script(code_dir, script, "score").run
    except BaseException as exc:  # init failed: report it, the host marks the deployment not ready
        traceback.print_exc()
        _send(proto_out, 1, _describe(exc).encode())
        return 1
    _send(proto_out, 0, b"ready")
    while True:
        header = read_exact(proto_in, 4)
        if header is None:
            return 0  # the host closed the pipe: shut down
        (size,) = struct.unpack(">I", header)
        body = read_exact(proto_in, size) or b""
        try:
            result: Any = run(body.decode("utf-8"))
            payload = result if isinstance(result, bytes) else json.dumps(result, default=str).encode()
            _send(proto_out, 0, payload)
        except Exception as exc:  # the script's error goes back to the caller; the worker keeps serving
            traceback.print_exc()
            _send(proto_out, 1, _describe(exc).encode())


if __name__ == "__main__":
    sys.exit(main())
