"""Azure ML's data collector API for scoring scripts (`azureml-ai-monitoring`), on the local endpoint host.

    from azureml.ai.monitoring import Collector

    inputs = Collector(name="model_inputs")
    features = Collector(name="my_features", on_error=lambda e: print(e))

    def run(raw):
        frame = pandas.read_json(raw)
        context = inputs.collect(frame)            # a new correlation ID
        features.collect(engineered(frame), context)  # the same one: the rows belong together

`collect` takes a pandas DataFrame as in Azure (also a list of row dicts or a dict of columns), samples it at
the collection's `sampling_rate` from the deployment's `data_collector`, and hands it to a thread that writes
the worker's samples to the host's spool each second; the host's converter makes them Parquet files beside the
host's own collections. A worker that is killed loses at most that second. Outside a local scoring worker (no
collector configured), and for a collection the deployment's data_collector does not enable, `collect` does
nothing, as in Azure. Standard library only: it runs in the deployment environment's Python.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .context import BasicCorrelationContext

__all__ = ["BasicCorrelationContext", "Collector"]

_log = logging.getLogger("azureml.ai.monitoring")
FLUSH_S = 1.0
HOST = ("model_inputs", "model_outputs", "request", "response")  # what the host collects (serving/collector.py)
MAX_PENDING = 50_000  # samples waiting in one worker; more are dropped (and counted), never slow a request


def _writer() -> Callable[[str, dict[str, Any], list[tuple[str, str, float, bytes]]], str] | None:
    """The spool writer of the worker's own plumbing (runtime/workerio.py), from the package this shim is in."""
    runtime = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))))
    if runtime not in sys.path:
        sys.path.append(runtime)
    try:
        from workerio import write_spool_segment  # type: ignore[import-not-found]
    except ImportError:
        return None
    return write_spool_segment  # type: ignore[no-any-return]


class _Spool:
    """The worker's samples, written to the host's spool by one daemon thread."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.directory = str(settings["spool"])
        self.meta = dict(settings["meta"])
        self.rates: dict[str, float] = {str(k): float(v) for k, v in (settings.get("rates") or {}).items()}
        self.pending: list[tuple[str, str, float, bytes]] = []
        self.dropped = 0
        self.lock = threading.Lock()
        self.write = _writer()
        self.thread = threading.Thread(target=self._loop, name="azureml-collector", daemon=True)
        self.thread.start()
        atexit.register(self.flush)

    def add(self, collection: str, correlation_id: str, body: bytes) -> None:
        with self.lock:
            if len(self.pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self.pending.append((collection, correlation_id, time.time(), body))

    def _loop(self) -> None:
        while True:
            time.sleep(FLUSH_S)  # a timer, not a wait for something: the thread only batches writes
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        if batch and self.write is not None:
            os.makedirs(self.directory, exist_ok=True)
            self.write(self.directory, self.meta, batch)


_spool: _Spool | None = None
_spool_lock = threading.Lock()


def _the_spool() -> _Spool | None:
    global _spool
    settings = os.environ.get("MLOPS_GITOPS_COLLECTOR")
    if not settings:
        return None
    with _spool_lock:
        if _spool is None:
            _spool = _Spool(json.loads(settings))
    return _spool


def _plain(value: Any) -> Any:
    """numpy and pandas values as JSON has them."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _columns(data: Any) -> dict[str, list[Any]] | list[dict[str, Any]]:
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame, as Azure requires
        return {str(k): list(v) for k, v in data.to_dict(orient="list").items()}
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return data
    raise TypeError(f"Collector.collect takes a pandas DataFrame (or a list of row dicts, or a dict of columns), "
                    f"not {type(data).__name__}")


class Collector:
    """One collection of the deployment's data_collector, named as in its YAML."""

    def __init__(self, *, name: str, on_error: Callable[[Exception], Any] | None = None, **_: Any) -> None:
        self.name = name
        self.on_error = on_error
        self._warned = False

    def collect(self, data: Any, correlation_context: BasicCorrelationContext | None = None
                ) -> BasicCorrelationContext:
        context = correlation_context or BasicCorrelationContext(str(uuid.uuid4()))
        try:
            spool = _the_spool()
            if spool is None or self.name not in spool.rates:
                if not self._warned:
                    self._warned = True
                    _log.warning("collection %s is not collected by the script: %s", self.name,
                                 "no local data collector runs here" if spool is None else
                                 "the local host collects it from the requests themselves" if self.name in HOST
                                 else "the deployment's data_collector does not enable it")
                return context
            if context.draw is None:  # one draw per context: a request's collections are sampled together
                context.draw = random.random()
            if context.draw >= spool.rates[self.name]:
                return context
            body = json.dumps(_columns(data), default=_plain).encode()
            spool.add(self.name, context.get_id(), body)
        except Exception as exc:  # collection never fails the request, as in Azure
            if self.on_error is not None:
                self.on_error(exc)
            else:
                _log.warning("collection %s failed: %s", self.name, exc)
        return context
