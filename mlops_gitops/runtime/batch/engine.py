"""The mini-batch engine: files in mini-batches, scored by worker processes of the deployment's environment.

Azure ML's batch semantics: `max_concurrency_per_instance` x `instance_count` workers, each running the
scoring script's init() once and run(mini_batch) per mini-batch; a mini-batch that raises, crashes its
worker or runs past `timeout` is tried again up to `max_retries` times (a killed worker is restarted
first); its files count as failed after that, and the job fails once more items failed than
`error_threshold` allows (-1: never). `append_row` writes what run() returned into one output file, in
mini-batch order, as the mini-batches finish: a job that fails or is cancelled keeps what it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import IO, Any

from mlops_gitops.fsutil import ensure_dir, open_private
from mlops_gitops.runtime.batch.settings import BatchSettings

WORKER = Path(__file__).with_name("worker.py")
READY_TIMEOUT_S = 300.0  # init() may load a large model
CANCEL_POLL_S = 0.5  # how soon a `job cancel` from another process is noticed


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class WorkerTimeout(Exception):
    pass


class WorkerGone(Exception):
    pass


class InitFailed(Exception):
    pass


@dataclass
class BatchOutcome:
    status: str  # completed | failed | cancelled
    mini_batches: int
    items: int
    succeeded_items: int = 0
    failed_items: int = 0
    failed_batches: int = 0
    rows: int = 0  # lines written into the output file
    finished_batches: int = 0
    message: str = ""
    partial: bool = False  # some mini-batches never finished: the output holds what did

    def metrics(self) -> dict[str, Any]:
        return {"mini_batches": self.mini_batches, "mini_batches_finished": self.finished_batches,
                "mini_batches_failed": self.failed_batches, "items": self.items,
                "items_succeeded": self.succeeded_items, "items_failed": self.failed_items,
                "rows_written": self.rows, "partial": self.partial}


@dataclass
class WorkerSpec:
    """How to start a worker: the interpreter, the scoring script and its folder, the environment."""
    python: str
    code_dir: str
    script: str
    env: dict[str, str] = field(default_factory=dict)
    tabular: bool = False  # mltable input: run() gets a DataFrame of the mini-batch's files


class Worker:
    def __init__(self, spec: WorkerSpec, index: int, log_fd: int) -> None:
        self.spec, self.index, self.log_fd = spec, index, log_fd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        spec = self.spec
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1", "AZUREML_WORKER_INDEX": str(self.index)}
        env.pop("VIRTUAL_ENV", None)
        self.proc = subprocess.Popen([spec.python, str(WORKER), spec.code_dir, spec.script], cwd=spec.code_dir,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_fd,
                                     bufsize=0, start_new_session=True)
        try:
            status, payload = self._receive(time.monotonic() + READY_TIMEOUT_S)
        except (WorkerTimeout, WorkerGone) as exc:
            self.kill()
            raise InitFailed("init() did not finish" if isinstance(exc, WorkerTimeout) else
                             f"the worker exited during init() (exit code {self._code()})") from None
        if status != 0:
            self.kill()
            raise InitFailed(f"init() raised {payload}")

    def _code(self) -> int | None:
        return self.proc.wait() if self.proc is not None else None

    def call(self, request: dict[str, Any], timeout_s: float) -> tuple[int, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        body = json.dumps(request).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(body)) + body)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise WorkerGone() from None
        return self._receive(time.monotonic() + timeout_s)

    def _receive(self, deadline: float) -> tuple[int, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        stream = self.proc.stdout
        status, size = struct.unpack(">BI", self._read(stream, 5, deadline))
        return status, json.loads(self._read(stream, size, deadline))

    @staticmethod
    def _read(stream: IO[bytes], n: int, deadline: float) -> bytes:
        data = b""
        fd = stream.fileno()
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerTimeout()
            chunk = os.read(fd, n - len(data))
            if not chunk:
                raise WorkerGone()
            data += chunk
        return data

    def kill(self) -> None:
        if self.proc is None:
            return
        _kill_group(self.proc.pid)  # the script's own children too
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc = None

    def close(self) -> None:
        """Shut down: the worker sees its input close and exits (killed if it does not within 5 s)."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class _Output:
    """append_row: each mini-batch's text written in mini-batch order as soon as those before it are done."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file = os.fdopen(open_private(path, append=False), "w", encoding="utf-8") if path else None
        self.pending: dict[int, str] = {}
        self.next = 0
        self.rows = 0
        self.lock = threading.Lock()

    def put(self, index: int, text: str) -> None:
        with self.lock:
            self.pending[index] = text
            while self.next in self.pending:
                self._write(self.pending.pop(self.next))
                self.next += 1
            if self.file is not None:
                self.file.flush()

    def _write(self, text: str) -> None:
        if self.file is not None and text:
            self.file.write(text if text.endswith("\n") else text + "\n")
            self.rows += text.count("\n") + (not text.endswith("\n"))

    def close(self) -> None:
        """Write what finished after a gap too (a failed or cancelled job keeps everything it scored)."""
        with self.lock:
            for index in sorted(self.pending):
                self._write(self.pending.pop(index))
            if self.file is not None:
                self.file.close()
                self.file = None


class MiniBatchEngine:
    def __init__(self, settings: BatchSettings, spec: WorkerSpec, log_path: Path | None, output_dir: Path,
                 cancel_requested: Callable[[], bool] = lambda: False,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.settings = settings
        self.spec = spec
        self.log_path = log_path
        self.output_dir = output_dir
        self.cancel_requested = cancel_requested
        self.on_progress = on_progress
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._workers: list[Worker] = []
        self._init_errors: list[str] = []
        self._failure = ""

    # -- the job -----------------------------------------------------------------------------------

    def run(self, files: list[str], batches: list[list[str]] | None = None) -> BatchOutcome:
        """Score `files` in mini-batches of mini_batch_size (or as `batches` groups them); None log: stderr."""
        s = self.settings
        if batches is None:
            batches = [files[i:i + s.mini_batch_size] for i in range(0, len(files), s.mini_batch_size)]
        self.outcome = BatchOutcome("running", len(batches), len(files))
        ensure_dir(self.output_dir)
        if self.log_path is not None:
            ensure_dir(self.log_path.parent)
            self._log_fd = open_private(self.log_path)
        else:  # the caller's stderr (a parallel step: the step's log)
            self._log_fd = os.dup(2)
        keep = s.output_action == "append_row"
        output = _Output(self.output_dir / s.output_file_name if keep else None)
        queue: SimpleQueue[tuple[int, list[str]]] = SimpleQueue()
        for item in enumerate(batches):
            queue.put(item)
        count = min(s.local_workers(), max(1, len(batches)))
        self.log(f"{len(files)} file(s) in {len(batches)} mini-batch(es) of up to {s.mini_batch_size}; "
                 f"{count} worker(s) (max_concurrency_per_instance {s.max_concurrency_per_instance} x "
                 f"instance_count {s.instance_count}); retries {s.max_retries}, timeout {s.timeout} s, "
                 f"error_threshold {s.error_threshold}, output_action {s.output_action}")
        threads = [threading.Thread(target=self._serve, args=(i, queue, output, keep), daemon=True,
                                    name=f"batch-worker-{i}") for i in range(count)]
        cancelled = False
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(CANCEL_POLL_S)
                    if not cancelled and not self._abort.is_set() and self.cancel_requested():
                        cancelled = True
                        self.log("the job was cancelled: stopping its workers")
                        self._stop_all()
        except BaseException:  # interrupted here (Ctrl-C): the workers go with us
            self._stop_all()
            raise
        finally:
            output.close()
            for w in self._workers:
                w.close()
        out = self.outcome
        out.rows = output.rows
        out.partial = out.finished_batches < out.mini_batches
        if cancelled:
            out.status, out.message = "cancelled", "the job was cancelled"
        elif self._failure:
            out.status, out.message = "failed", self._failure
        elif out.finished_batches < out.mini_batches and self._init_errors:
            out.status, out.message = "failed", f"no worker could start: {self._init_errors[0]}"
        else:
            out.status = "completed"
        self.log(f"job {out.status}: {out.succeeded_items} item(s) succeeded, {out.failed_items} failed, "
                 f"{out.finished_batches}/{out.mini_batches} mini-batch(es) finished, {out.rows} row(s) written"
                 + (f" — {out.message}" if out.message else ""))
        os.close(self._log_fd)
        return out

    def _stop_all(self) -> None:
        self._abort.set()
        with self._lock:
            workers = list(self._workers)
        for w in workers:
            if w.proc is not None:
                _kill_group(w.proc.pid)

    def log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.write(self._log_fd, f"[{stamp}] {line}\n".encode())

    # -- one worker's loop -----------------------------------------------------------------------

    def _start(self, index: int) -> Worker | None:
        worker = Worker(self.spec, index, self._log_fd)
        with self._lock:
            if self._abort.is_set():
                return None
            self._workers.append(worker)
        try:
            worker.start()
        except InitFailed as exc:
            self.log(f"worker {index}: {exc}")
            with self._lock:
                self._init_errors.append(str(exc))
            return None
        return worker

    def _serve(self, index: int, queue: SimpleQueue[tuple[int, list[str]]], output: _Output, keep: bool) -> None:
        worker = self._start(index)
        while worker is not None and not self._abort.is_set():
            try:
                number, files = queue.get_nowait()
            except Empty:
                return
            result, worker = self._attempts(index, worker, number, files, keep)
            if self._abort.is_set() and isinstance(result, str):
                return  # stopped by the cancel or the threshold while it ran: not counted as failed
            self._settle(number, files, result, output)  # a mini-batch that finished is kept, even now
            if self._abort.is_set():
                return
            over = self._over_threshold()
            if over and not self._failure:
                with self._lock:
                    self._failure = over
                self.log(self._failure)
                self._stop_all()

    def _over_threshold(self) -> str:
        s, out = self.settings, self.outcome
        if s.error_threshold != -1 and out.failed_items > s.error_threshold:
            return f"error_threshold {s.error_threshold} exceeded: {out.failed_items} item(s) failed"
        if s.mini_batch_error_threshold != -1 and out.failed_batches > s.mini_batch_error_threshold:
            return (f"mini_batch_error_threshold {s.mini_batch_error_threshold} exceeded: {out.failed_batches} "
                    "mini-batch(es) failed")
        return ""

    def _attempts(self, index: int, worker: Worker | None, number: int, files: list[str],
                  keep: bool) -> tuple[dict[str, Any] | str, Worker | None]:
        """One mini-batch, tried up to 1 + max_retries times: its payload, or the last error's text."""
        s = self.settings
        error = ""
        request = {"files": files, "tabular": self.spec.tabular, "keep": keep}
        for attempt in range(1, s.max_retries + 2):
            if worker is None:
                worker = self._start(index)
                if worker is None:
                    return error or "its worker could not start", None
            started = time.monotonic()
            try:
                status, payload = worker.call(request, s.timeout)
            except WorkerTimeout:
                error = f"timed out after {s.timeout} s"
                worker.kill()
                worker = None
            except WorkerGone:
                code = worker.proc.wait() if worker.proc is not None else None
                error = f"its worker exited (exit code {code})"
                worker.kill()
                worker = None
            else:
                if status == 0:
                    if s.logging_level == "debug" or attempt > 1:
                        self.log(f"mini-batch {number + 1}: {len(files)} file(s) scored in "
                                 f"{time.monotonic() - started:.2f} s (try {attempt})")
                    return payload, worker
                error = f"run() raised {payload}"
            if self._abort.is_set():
                return error, worker
            self.log(f"mini-batch {number + 1} ({len(files)} file(s)), try {attempt} of {s.max_retries + 1}: {error}")
        return error, worker

    def _settle(self, number: int, files: list[str], result: dict[str, Any] | str, output: _Output) -> None:
        out = self.outcome
        with self._lock:
            out.finished_batches += 1
            if isinstance(result, str):
                out.failed_batches += 1
                out.failed_items += len(files)
                if self.settings.logging_level == "debug":
                    self.log(f"mini-batch {number + 1} failed: {', '.join(Path(f).name for f in files)}")
            else:
                count = int(result.get("count", 0))
                short = max(0, len(files) - count) if not self.spec.tabular else 0
                if short:  # Azure counts each element run() returns as one item done
                    self.log(f"mini-batch {number + 1}: run() returned {count} element(s) for {len(files)} "
                             f"file(s); {short} counted as failed")
                out.failed_items += short
                out.succeeded_items += len(files) - short
            done, total = out.finished_batches, out.mini_batches
        output.put(number, "" if isinstance(result, str) else str(result.get("text") or ""))
        if self.on_progress is not None:
            self.on_progress(done, total)
