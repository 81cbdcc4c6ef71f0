"""Data collection (Azure's `data_collector` on online deployments): sampled request inputs and answers,
written off the request path as Parquet files under the workspace.

The request path only draws the sample and appends the raw bodies to a bounded in-memory buffer; one writer
thread for the whole host parses them and writes a file per deployment, collection and window every
`FLUSH_S` seconds (or sooner once `FLUSH_ROWS` requests wait). A file appears under its final name only once
it is complete (written beside it, then renamed). What a killed host loses is what waited in the buffer:
at most the last `FLUSH_S` seconds of sampled requests, never more than `MAX_PENDING`; a full buffer drops
the newest sample and counts it (`dropped`), it never slows the request down.

Layout, as Azure's collector writes to blob storage, one folder level per `rolling_rate` step:
`collected/<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH[/mm]/<time>-<id>.parquet`. Columns:
`correlationid`, `time` (UTC), `endpoint`, `deployment`, `model_version`, `collection`, `row` (the row's
index in its request), then one column per feature for tabular payloads, or `data` (the payload as JSON)
for anything else. Collections: `model_inputs` (the request's rows) and `model_outputs` (the answer's
rows); `request` and `response` hold the bodies as sent.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_gitops.host")
FLUSH_S = 1.0
FLUSH_ROWS = 5000
MAX_PENDING = 50_000
META = ("correlationid", "time", "endpoint", "deployment", "model_version", "collection", "row")
ROLLING = {"year": 1, "month": 2, "day": 3, "hour": 4, "minute": 5}
KNOWN = ("model_inputs", "model_outputs", "request", "response")


def available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def window_parts(when: datetime, rolling_rate: str) -> list[str]:
    parts = [f"{when.year:04d}", f"{when.month:02d}", f"{when.day:02d}", f"{when.hour:02d}", f"{when.minute:02d}"]
    return parts[:ROLLING.get(rolling_rate, 4)]


def _columns(value: Any, prefix: str) -> dict[str, list[Any]] | None:
    """A payload's rows as columns, where it is a table (Azure's shapes and the Open Inference Protocol's)."""
    if isinstance(value, dict):
        return _dict_columns(value, prefix)
    if isinstance(value, list) and value:
        if all(isinstance(r, dict) for r in value):
            names = list(dict.fromkeys(k for r in value for k in r))
            return {str(n): [r.get(n) for r in value] for n in names}
        if all(isinstance(r, list) for r in value):
            width = len(value[0])
            if any(len(r) != width for r in value):
                return None
            return {f"{prefix}_{i}": [r[i] for r in value] for i in range(width)}
        if all(not isinstance(r, (dict, list)) for r in value):
            return {prefix: list(value)}
    return None


def _dict_columns(value: dict[str, Any], prefix: str) -> dict[str, list[Any]] | None:
    if isinstance(value.get("input_data"), (dict, list)):
        return _columns(value["input_data"], prefix)
    if isinstance(value.get("columns"), list) and isinstance(value.get("data"), list):
        names = [str(c) for c in value["columns"]]
        rows = [r for r in value["data"] if isinstance(r, list) and len(r) == len(names)]
        return {n: [r[i] for r in rows] for i, n in enumerate(names)} if rows else None
    for key in ("inputs", "outputs"):
        if isinstance(value.get(key), list) and all(isinstance(t, dict) for t in value[key]):
            return _tensor_columns(value[key])
    if "data" in value:
        return _columns(value["data"], prefix)
    if value and all(isinstance(v, list) for v in value.values()) and len({len(v) for v in value.values()}) == 1:
        return {str(k): list(v) for k, v in value.items()}
    return None


def _tensor_columns(tensors: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """V2 tensors: one column per tensor, and per element of a row for [n, k] tensors."""
    out: dict[str, list[Any]] = {}
    for tensor in tensors:
        shape = tensor.get("shape") or []
        flat = list(_flatten(tensor.get("data") or []))
        width = 1 if len(shape) < 2 else int(shape[1])
        if width <= 0 or len(flat) % width:
            return None
        name = str(tensor.get("name"))
        for i in range(width):
            out[name if width == 1 else f"{name}_{i}"] = flat[i::width]
    return out or None


def _flatten(data: Any) -> Iterator[Any]:
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


@dataclass
class Sample:
    collection: str
    correlation_id: str
    when: datetime
    body: bytes


@dataclass
class DeploymentCollector:
    """One deployment's collections: which are on and at what sampling rate, and the buffer they share."""
    root: Path
    endpoint: str
    deployment: str
    model_version: str | None
    rates: dict[str, float]  # collection -> sampling rate
    rolling_rate: str = "hour"
    pending: list[Sample] = field(default_factory=list)
    dropped: int = 0
    written: int = 0

    def draw(self) -> float | None:
        """This request's draw (None: no collection takes it)."""
        u = random.random()
        return u if any(u < rate for rate in self.rates.values()) else None

    def add(self, collection: str, draw: float, correlation_id: str, body: bytes) -> None:
        rate = self.rates.get(collection)
        if rate is None or draw >= rate:
            return
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append(Sample(collection, correlation_id, datetime.now(UTC), body))


def _rows(dc: DeploymentCollector, samples: list[Sample]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in samples:
        meta = {"correlationid": s.correlation_id, "time": s.when, "endpoint": dc.endpoint,
                "deployment": dc.deployment, "model_version": dc.model_version, "collection": s.collection}
        payload: Any
        try:
            payload = json.loads(s.body)
        except ValueError:
            payload = s.body.decode("utf-8", "replace")
        columns = (_columns(payload, "input" if s.collection == "model_inputs" else "prediction")
                   if s.collection in ("model_inputs", "model_outputs") else None)
        if columns is None:
            out.append({**meta, "row": 0, "data": payload if isinstance(payload, str) else json.dumps(payload)})
            continue
        count = len(next(iter(columns.values())))
        out += [{**meta, "row": i, **{k: v[i] for k, v in columns.items()}} for i in range(count)]
    return out


def write_parquet(dc: DeploymentCollector, collection: str, when: datetime, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # one feature with mixed types: features as text
        table = pa.Table.from_pylist([{k: (v if k in META else None if v is None else str(v)) for k, v in r.items()}
                                      for r in rows])
    folder = dc.root.joinpath(dc.endpoint, dc.deployment, collection, *window_parts(when, dc.rolling_rate))
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{when.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.parquet"
    tmp = folder / f".{name}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, folder / name)  # complete, or not there
    return folder / name


class CollectorPool:
    """The host's writer thread: it flushes every deployment's buffer into Parquet files."""

    def __init__(self, root: Path, flush_s: float = FLUSH_S) -> None:
        self.root = root
        self.flush_s = flush_s
        self.collectors: dict[str, DeploymentCollector] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one flush at a time (the thread's, or close's last one)
        self._thread: threading.Thread | None = None

    def collector(self, key: str, endpoint: str, deployment: str, model_version: str | None,
                  rates: dict[str, float], rolling_rate: str) -> DeploymentCollector:
        old = self.collectors.get(key)
        dc = DeploymentCollector(self.root, endpoint, deployment, model_version, rates, rolling_rate)
        if old is not None:  # a reloaded deployment keeps what its old version sampled
            dc.pending, dc.dropped, dc.written = old.pending, old.dropped, old.written
        self.collectors[key] = dc
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="data-collector", daemon=True)
            self._thread.start()
        return dc

    def nudge(self, dc: DeploymentCollector) -> None:
        if len(dc.pending) >= FLUSH_ROWS:
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._lock:
            for dc in list(self.collectors.values()):
                samples, dc.pending = dc.pending, []  # one assignment: requests append to the new list
                if not samples:
                    continue
                groups: dict[tuple[str, tuple[str, ...]], list[Sample]] = {}
                for s in samples:
                    groups.setdefault((s.collection, tuple(window_parts(s.when, dc.rolling_rate))), []).append(s)
                for (collection, _), group in groups.items():
                    try:
                        write_parquet(dc, collection, group[0].when, _rows(dc, group))
                        dc.written += len(group)
                    except Exception:  # a full disk or an unwritable folder: logged, the host serves on
                        log.exception("data collection of %s/%s could not be written", dc.endpoint, dc.deployment)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


def rates_of(data_collector: dict[str, Any] | None) -> tuple[dict[str, float], str]:
    """The collections a deployment's data_collector turns on, with their sampling rates, and its rolling rate."""
    if not data_collector:
        return {}, "hour"
    default = float(data_collector.get("sampling_rate", 1.0) if data_collector.get("sampling_rate") is not None
                    else 1.0)
    rates: dict[str, float] = {}
    for name, settings in (data_collector.get("collections") or {}).items():
        settings = settings or {}
        if str(settings.get("enabled", True)).lower() in ("false", "0", "no"):
            continue
        rate = settings.get("sampling_rate")
        rates[str(name)] = float(default if rate is None else rate)
    return rates, str(data_collector.get("rolling_rate") or "hour")
