"""A pipeline's `type: parallel` step (Azure's parallel_run_function), run on the mini-batch engine.

    python -m mlops_gitops.runtime.batch.parallel --entry-script S --input-data PATH \
        [--append-row-to DIR] [settings] -- ARGS...

The pipeline runner runs this as the step's command, in the step's folder with the environment's
Python first on PATH: the workers are that Python, the entry script sees ARGS as its sys.argv (its
init() parses them, as on Azure), and `append_row_to` gets parallel_run_step.txt. The step's log is
this process's output; its exit code is 0 only when the job completed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path

from mlops_gitops.runtime.batch.engine import MiniBatchEngine, WorkerSpec
from mlops_gitops.runtime.batch.settings import BatchSettings

APPEND_ROW_FILE = "parallel_run_step.txt"  # Azure's name for what append_row_to collects
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(kb|mb|gb|b)\s*$", re.I)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}


def mini_batches(files: list[Path], size: str) -> list[list[Path]]:
    """Files in mini-batches: N files each, or, for a size such as '10kb', files up to about that many bytes."""
    m = _SIZE.match(size)
    if m is None:
        count = max(1, int(size))
        return [files[i:i + count] for i in range(0, len(files), count)]
    budget = float(m.group(1)) * _UNITS[m.group(2).lower()]
    out: list[list[Path]] = [[]]
    used = 0
    for f in files:
        if out[-1] and used + f.stat().st_size > budget:
            out.append([])
            used = 0
        out[-1].append(f)
        used += f.stat().st_size
    return [b for b in out if b]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    own, program = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(prog="parallel")
    p.add_argument("--entry-script", required=True)
    p.add_argument("--input-data", required=True)
    p.add_argument("--append-row-to")
    p.add_argument("--mini-batch-size", default="1")
    p.add_argument("--workers-per-instance", type=int, default=1)
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--error-threshold", type=int, default=-1)
    p.add_argument("--mini-batch-error-threshold", type=int, default=-1)
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--timeout", type=int, default=60)
    p.add_argument("--logging-level", default="info")
    a = p.parse_args(own)
    source = Path(a.input_data)
    files = sorted(f for f in (source.rglob("*") if source.is_dir() else [source]) if f.is_file())
    if not files:
        print(f"parallel: input_data {source} holds no files: there is nothing to run", file=sys.stderr)
        return 1
    batches = mini_batches(files, a.mini_batch_size)
    settings = BatchSettings(
        mini_batch_size=max(len(b) for b in batches), max_concurrency_per_instance=a.workers_per_instance,
        instance_count=a.instance_count, error_threshold=a.error_threshold,
        mini_batch_error_threshold=a.mini_batch_error_threshold, max_retries=a.max_retries, timeout=a.timeout,
        output_action="append_row" if a.append_row_to else "summary_only", output_file_name=APPEND_ROW_FILE,
        logging_level=a.logging_level.lower()).checked()
    python = shutil.which("python3") or shutil.which("python") or sys.executable  # the environment's, first on PATH
    spec = WorkerSpec(python, os.getcwd(), a.entry_script, {
        "AZUREML_LOG_LEVEL": settings.logging_level, "MLOPS_GITOPS_BATCH_ARGV": json.dumps(program)})
    output = Path(a.append_row_to) if a.append_row_to else Path("outputs")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `job cancel`: the workers are stopped on the way out
    engine = MiniBatchEngine(settings, spec, None, output)
    outcome = engine.run([str(f) for f in files], batches=[[str(f) for f in b] for b in batches])
    return 0 if outcome.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
