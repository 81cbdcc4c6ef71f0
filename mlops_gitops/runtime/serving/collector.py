"""Data collection (Azure's `data_collector` on online deployments): sampled request inputs and answers,
written off the request path as Parquet files under the workspace.

The request path only draws the sample and appends the raw bodies to a bounded in-memory buffer. One thread
of the host writes the buffers to a spool on disk (`collected/.spool/*.seg`, raw bodies) every `FLUSH_S`
seconds, or sooner once `FLUSH_ROWS` samples wait; a converter process parses the spool into Parquet, one
file per deployment, collection and window, so that parsing never holds the host's interpreter lock. Files
appear under their final names only once complete (written beside them, then renamed). What a killed host
loses is what waited in its buffer: at most the last `FLUSH_S` seconds of samples, never more than
`MAX_PENDING`; what reached the spool is converted by the converter (which outlives the host to finish it)
or by the next host. A full buffer drops the newest sample and counts it (`dropped`): it never slows a
request down.

Layout, as Azure's collector writes to blob storage, one folder level per `rolling_rate` step:
`collected/<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH[/mm]/<time>-<id>.parquet`. Columns:
`correlationid`, `time` (UTC), `endpoint`, `deployment`, `model_version`, `collection`, `row` (the row's
index in its request), then one column per feature for tabular payloads, or `data` (the payload as JSON)
for anything else. Collections: `model_inputs` (the request's rows) and `model_outputs` (the answer's
rows); `request` and `response` hold the bodies as sent; any other name is a custom collection, which a scoring
script fills through `azureml.ai.monitoring.Collector` (serving/shims/azureml: its workers write their own
samples to the spool, with the same bound of FLUSH_S seconds a killed worker may lose).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from mlops_gitops.runtime.workerio import SPOOL_FRAME, write_spool_segment

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


class Sample(NamedTuple):  # a tuple: made on the request path
    collection: str
    correlation_id: str
    when: float  # seconds since the epoch, UTC
    body: bytes


@dataclass
class DeploymentCollector:
    """One deployment's collections: which are on and at what sampling rate, and the buffer they share."""
    endpoint: str
    deployment: str
    model_version: str | None
    rates: dict[str, float]  # collection -> sampling rate
    rolling_rate: str = "hour"
    pending: list[Sample] = field(default_factory=list)
    dropped: int = 0
    spooled: int = 0

    def draw(self) -> float | None:
        """This request's draw (None: no collection takes it)."""
        u = random.random()
        return u if any(u < rate for rate in self.rates.values()) else None

    def add(self, collection: str, draw: float, correlation_id: str, body: bytes, when: float) -> None:
        rate = self.rates.get(collection)
        if rate is None or draw >= rate:
            return
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append(Sample(collection, correlation_id, when, body))

    def meta(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "deployment": self.deployment, "model_version": self.model_version,
                "rolling_rate": self.rolling_rate}


# -- the spool: raw samples on disk within FLUSH_S, made Parquet by a process of its own -----------------------

FRAME = SPOOL_FRAME
SPOOL = ".spool"
COLLECTOR_ENV = "MLOPS_GITOPS_COLLECTOR"  # what a scoring worker's Collector needs (serving/shims/azureml)


def write_segment(spool: Path, dc: DeploymentCollector, samples: list[Sample]) -> Path:
    """One flush of one deployment (workerio.write_spool_segment)."""
    return Path(write_spool_segment(str(spool), dc.meta(), samples))


def read_segment(path: Path) -> tuple[dict[str, Any], list[Sample]]:
    data = path.read_bytes()
    end = data.index(b"\n")
    meta = json.loads(data[:end])
    samples, at = [], end + 1
    while at < len(data):
        clen, ilen, when, blen = FRAME.unpack_from(data, at)
        at += FRAME.size
        collection = data[at:at + clen].decode()
        cid = data[at + clen:at + clen + ilen].decode(errors="replace")
        at += clen + ilen
        samples.append(Sample(collection, cid, when, data[at:at + blen]))
        at += blen
    return meta, samples


_NAMES: dict[tuple[str, int], tuple[str, ...]] = {}


def _loaded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _row_form(value: Any, prefix: str) -> tuple[tuple[str, ...], list[Any]] | None:
    """Rows and their column names, for the shapes that are rows (Azure's `data` lists, `columns`/`data`):
    most requests are, and rows of many requests are turned into columns at once. None: another shape."""
    if isinstance(value, dict):
        if isinstance(value.get("input_data"), (dict, list)):
            return _row_form(value["input_data"], prefix)
        if isinstance(value.get("columns"), list) and isinstance(value.get("data"), list):
            names = tuple(str(c) for c in value["columns"])
            rows = [r for r in value["data"] if isinstance(r, list) and len(r) == len(names)]
            return (names, rows) if rows else None
        if any(isinstance(value.get(k), list) for k in ("inputs", "outputs")) or "data" not in value:
            return None
        return _row_form(value["data"], prefix)
    if not isinstance(value, list) or not value or not isinstance(value[0], list):
        return None
    width = len(value[0])
    if any(not isinstance(r, list) or len(r) != width for r in value):
        return None
    known = _NAMES.get((prefix, width))
    if known is None:
        known = _NAMES[(prefix, width)] = tuple(f"{prefix}_{i}" for i in range(width))
    return known, value


class _Columns:
    """Feature columns filled request by request; a feature a request lacks is null in its rows."""

    def __init__(self) -> None:
        self.features: dict[str, list[Any]] = {}
        self.count = 0
        self._names: tuple[str, ...] | None = None  # the open block: rows of requests with the same columns
        self._rows: list[Any] = []

    def add_rows(self, names: tuple[str, ...], rows: list[Any]) -> None:
        if names != self._names:
            self._close()
            self._names = names
        self._rows.extend(rows)

    def add_columns(self, columns: dict[str, list[Any]], n: int) -> None:
        self._close()
        self._place(columns)
        self.count += n

    def add_nothing(self, n: int) -> None:
        self._close()
        self.count += n

    def done(self) -> dict[str, list[Any]]:
        self._close()
        for values in self.features.values():  # a feature the last requests lacked
            values.extend([None] * (self.count - len(values)))
        return self.features

    def _close(self) -> None:
        if self._names is not None and self._rows:
            self._place(dict(zip(self._names, map(list, zip(*self._rows, strict=True)), strict=True)))
            self.count += len(self._rows)
        self._names, self._rows = None, []

    def _place(self, columns: dict[str, list[Any]]) -> None:
        for name, values in columns.items():
            known = self.features.get(name)
            if known is None:
                self.features[name] = known = [None] * self.count
            elif len(known) < self.count:
                known.extend([None] * (self.count - len(known)))
            known.extend(values)


def _table(meta: dict[str, Any], collection: str, samples: list[Sample]) -> Any:
    """The samples of one collection as one Arrow table, built column by column."""
    import pyarrow as pa

    cids: list[str] = []
    times: list[int] = []
    rows: list[int] = []
    columns = _Columns()
    payloads: list[str | None] = []
    tabular = collection not in ("request", "response")  # custom collections: what a script's Collector logged
    prefix = {"model_inputs": "input", "model_outputs": "prediction"}.get(collection, collection)
    for s in samples:
        value = _loaded(s.body) if tabular else None
        as_rows = _row_form(value, prefix) if value is not None else None
        found = _columns(value, prefix) if value is not None and as_rows is None else None
        if as_rows is not None:
            n = len(as_rows[1])
            columns.add_rows(*as_rows)
        elif found:
            n = len(next(iter(found.values())))
            columns.add_columns(found, n)
        else:  # not a table: kept as text
            n = 1
            columns.add_nothing(1)
        payloads.extend([None] * n if as_rows is not None or found else [s.body.decode("utf-8", "replace")])
        cids.extend([s.correlation_id] * n)
        times.extend([int(s.when * 1_000_000)] * n)
        rows.extend(range(n))
    features = columns.done()
    count = len(cids)
    arrays: dict[str, Any] = {
        "correlationid": pa.array(cids, pa.string()),
        "time": pa.array(times, pa.int64()).cast(pa.timestamp("us", "UTC")),
        "endpoint": pa.array([meta["endpoint"]] * count, pa.string()),
        "deployment": pa.array([meta["deployment"]] * count, pa.string()),
        "model_version": pa.array([meta.get("model_version")] * count, pa.string()),
        "collection": pa.array([collection] * count, pa.string()),
        "row": pa.array(rows, pa.int32())}
    for name, values in features.items():
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a feature of mixed types: kept as text
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    if any(p is not None for p in payloads):
        arrays["data"] = pa.array(payloads, pa.string())
    return pa.table(arrays)


def convert_segment(root: Path, path: Path) -> list[Path]:
    """A spool segment as Parquet files (one per collection and window), then removed. The files are named after
    the segment, so a conversion cut short and redone writes the same files again, never a second copy."""
    import pyarrow.parquet as pq

    meta, samples = read_segment(path)
    groups: dict[tuple[str, tuple[str, ...]], list[Sample]] = {}
    for s in samples:
        window = tuple(window_parts(datetime.fromtimestamp(s.when, UTC), meta["rolling_rate"]))
        groups.setdefault((s.collection, window), []).append(s)
    written = []
    for (collection, window), group in groups.items():
        folder = root.joinpath(meta["endpoint"], meta["deployment"], collection, *window)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.stem}.{os.getpid()}.parquet.tmp"  # a converter left from a killed host may race
        pq.write_table(_table(meta, collection, group), tmp)
        os.replace(tmp, folder / f"{path.stem}.parquet")  # complete, or not there
        written.append(folder / f"{path.stem}.parquet")
    path.unlink()
    return written


def convert_pending(root: Path) -> int:
    """Every complete segment of the spool, oldest first; returns how many were converted."""
    spool = root / SPOOL
    done = 0
    for seg in sorted(spool.glob("*.seg")) if spool.is_dir() else []:
        try:
            convert_segment(root, seg)
            done += 1
        except FileNotFoundError:  # converted meanwhile by the host's last pass
            continue
        except Exception:  # kept for the next pass; one bad segment never blocks the others
            log.exception("spooled data %s could not be made Parquet", seg.name)
    return done


class CollectorPool:
    """The host's side: a thread spools every deployment's buffer to disk each FLUSH_S, and a converter process
    (python -m mlops_gitops.runtime.serving.collector ROOT PID) makes the spool Parquet, away from the host's
    interpreter lock."""

    def __init__(self, root: Path, flush_s: float = FLUSH_S, converter: bool = True) -> None:
        self.root = root
        self.spool = root / SPOOL
        self.flush_s = flush_s
        self.converter = converter
        self.collectors: dict[str, DeploymentCollector] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one flush at a time (the thread's, or close's last one)
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def collector(self, key: str, endpoint: str, deployment: str, model_version: str | None,
                  rates: dict[str, float], rolling_rate: str) -> DeploymentCollector:
        old = self.collectors.get(key)
        dc = DeploymentCollector(endpoint, deployment, model_version, rates, rolling_rate)
        if old is not None:  # a reloaded deployment keeps what its old version sampled
            dc.pending, dc.dropped, dc.spooled = old.pending, old.dropped, old.spooled
        self.collectors[key] = dc
        if self._thread is None:
            self.spool.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._loop, name="data-collector", daemon=True)
            self._thread.start()
            if self.converter:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "mlops_gitops.runtime.serving.collector", str(self.root),
                     str(os.getpid())], stdin=subprocess.DEVNULL, start_new_session=True)
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
                self._spool(dc)

    def retire(self, key: str) -> None:
        """A deployment stopped or no longer collecting: what it sampled is spooled, and it leaves the pool."""
        with self._lock:
            dc = self.collectors.pop(key, None)
            if dc is not None:
                self._spool(dc)

    def _spool(self, dc: DeploymentCollector) -> None:
        samples, dc.pending = dc.pending, []  # one assignment: requests append to the new list
        if not samples:
            return
        try:
            write_segment(self.spool, dc, samples)
            dc.spooled += len(samples)
        except OSError:  # a full disk or an unwritable folder: logged, the host serves on
            log.exception("data collection of %s/%s could not be spooled", dc.endpoint, dc.deployment)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=60)
        convert_pending(self.root)  # what the converter had not reached


def _convert_forever(root: Path, parent: int, every_s: float = FLUSH_S) -> None:
    if hasattr(os, "nice"):  # background work: it takes the cores the host leaves idle, and catches up after;
        os.nice(19)  # the lowest priority still runs (about 1.5% of a core beside a busy host), never starves
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        if not convert_pending(root):
            stop.wait(every_s)
        if os.getppid() != parent:  # the host is gone (killed): make Parquet of what it spooled, then go
            convert_pending(root)
            return


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


if __name__ == "__main__":  # the converter process the host starts
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _convert_forever(Path(sys.argv[1]), int(sys.argv[2]))
