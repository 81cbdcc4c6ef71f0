"""A batch scoring worker, run by the deployment environment's Python: standard library only.

    python worker.py CODE_DIR SCORING_SCRIPT

As Azure's batch deployments run a scoring script: `init()` once, then `run(mini_batch)` for each
mini-batch, a list of file paths (a pandas DataFrame for tabular `mltable` inputs). Protocol on the
original stdin/stdout: the engine sends a 4-byte big-endian length and a JSON request; the worker
answers one status byte (0 ok, 1 the script raised) and a length-prefixed JSON payload. The first
answer, after init(), says whether the worker is ready. The script's prints go to the job's log.
"""

from __future__ import annotations

import json
import logging
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

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _send(stream: IO[bytes], status: int, payload: Any) -> None:
    body = json.dumps(payload, default=str).encode()
    stream.write(struct.pack(">BI", status, len(body)) + body)


def _table(files: list[str]) -> Any:
    """A tabular (mltable) mini-batch: its delimited files as one DataFrame, as Azure gives it."""
    import pandas as pd  # the environment's own pandas, as on Azure

    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def _lines(result: Any) -> tuple[list[str], int]:
    """What run() returned, as append_row writes it: one line per element (a DataFrame: per row, CSV)."""
    if hasattr(result, "to_csv") and hasattr(result, "__len__"):  # a pandas DataFrame (or Series)
        text = result.to_csv(index=False, header=False)
        return text.splitlines(), len(result)
    if result is None:
        return [], 0
    if isinstance(result, str | bytes) or not hasattr(result, "__iter__"):
        raise TypeError(f"run() must return a list or a pandas DataFrame, not {type(result).__name__}")
    items = list(result)
    return [str(item) for item in items], len(items)


def main() -> int:
    code_dir, script = sys.argv[1], sys.argv[2]
    proto_in, proto_out = protocol_streams()
    logging.basicConfig(level=LEVELS.get(os.environ.get("AZUREML_LOG_LEVEL", "info"), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    # a parallel step's program_arguments: its entry script's init() parses them from sys.argv, as on Azure
    sys.argv = [script, *json.loads(os.environ.get("MLOPS_GITOPS_BATCH_ARGV") or "[]")]
    try:
        run = load_script(code_dir, script, "batch_score").run
    except BaseException as exc:  # init failed: the engine says so and fails the job
        traceback.print_exc()
        _send(proto_out, 1, f"{type(exc).__name__}: {exc}")
        return 1
    _send(proto_out, 0, "ready")
    while True:
        header = read_exact(proto_in, 4)
        if header is None:
            return 0  # the engine closed the pipe: shut down
        (size,) = struct.unpack(">I", header)
        request = json.loads((read_exact(proto_in, size) or b"{}").decode())
        try:
            files = request["files"]
            lines, count = _lines(run(_table(files) if request.get("tabular") else files))
            # one text, not a list of lines: a million short strings cost more to encode than their bytes
            text = "".join(line + "\n" for line in lines) if request.get("keep", True) else ""
            _send(proto_out, 0, {"text": text, "count": count})
        except Exception as exc:  # the mini-batch failed; the worker goes on with the next one
            traceback.print_exc()
            _send(proto_out, 1, f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
