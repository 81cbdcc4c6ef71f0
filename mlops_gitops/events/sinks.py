"""Deliver events to the sinks configured in mlops.yaml: webhook, JSON-lines file, command.

Deliveries run on a few daemon threads so that apply never waits on a slow receiver; a command ends by
draining them for at most 15 s (MLOPS_GITOPS_EVENT_DEADLINE_S). Each delivery has a total deadline,
whatever the receiver does (a webhook is retried with exponential backoff inside it, a command's process
group is killed at it); an event that could not be delivered goes to the dead-letter file, once.
Secrets (the webhook's HMAC key) are never written anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mlops_gitops.events.model import Event, matches
from mlops_gitops.fsutil import ensure_dir, open_private

SIGNATURE_HEADER = "X-MLOps-Signature"  # sha256=<hex HMAC of the body>, as GitHub and MLflow sign theirs


def _seconds() -> float:
    """MLOPS_GITOPS_EVENT_DEADLINE_S, else 15: the deadline of one delivery and of the drain at the end."""
    return float(os.environ.get("MLOPS_GITOPS_EVENT_DEADLINE_S") or 15.0)



class Sink(Protocol):
    patterns: list[str]

    @property
    def name(self) -> str: ...

    def deliver(self, event: Event, deadline: float, abort: threading.Event) -> None:
        """Deliver by `deadline` (time.monotonic) or raise DeliveryError; stop at once when `abort` is set."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _mask_url(url: str) -> str:
    """Drop credentials and query strings (tokens) from a URL before it appears in a message."""
    base, _, _ = url.partition("?")
    if "@" in base.split("//", 1)[-1].split("/", 1)[0]:
        scheme, _, rest = base.partition("//")
        base = f"{scheme}//***@{rest.split('@', 1)[1]}"
    return base


class _Watchdog:
    """Shuts a connection's socket down at a deadline or on abort: a receiver that trickles one byte every
    few seconds never trips a per-read timeout, so the whole exchange needs a clock of its own."""

    def __init__(self, conn: http.client.HTTPConnection, until: float, abort: threading.Event) -> None:
        self.conn, self.until, self.abort = conn, until, abort
        self.done = threading.Event()
        self.fired = False
        threading.Thread(target=self._watch, daemon=True, name="webhook-deadline").start()

    def _watch(self) -> None:
        while not self.done.wait(max(0.0, min(0.1, self.until - time.monotonic()))):
            if self.abort.is_set() or time.monotonic() >= self.until:
                self.fired = True
                with contextlib.suppress(OSError):
                    if self.conn.sock is not None:
                        self.conn.sock.shutdown(socket.SHUT_RDWR)
                return


@dataclass
class WebhookSink:
    url: str
    secret: str | None = None
    patterns: list[str] = field(default_factory=lambda: ["*"])
    attempts: int = 4
    backoff_s: float = 0.5
    timeout_s: float = 5.0  # one attempt, connection to last byte

    @property
    def name(self) -> str:
        return f"webhook {_mask_url(self.url)}"

    def deliver(self, event: Event, deadline: float, abort: threading.Event) -> None:
        body = event.to_json().encode()
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8", "User-Agent": "mlops-gitops",
                   "ce-id": event.id, "ce-type": event.type}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        last, tried = "no attempt before the deadline", 0
        for attempt in range(self.attempts):
            if attempt and abort.wait(min(self.backoff_s * 2 ** (attempt - 1), max(0.0, deadline - time.monotonic()))):
                break
            until = min(deadline, time.monotonic() + self.timeout_s)
            if until - time.monotonic() <= 0.01:
                break
            tried += 1
            try:
                status = self._post(body, headers, until, abort)
            except (OSError, http.client.HTTPException) as exc:  # a cut-off answer is not an answer
                late = time.monotonic() >= until - 0.01
                last = f"no complete answer within {self.timeout_s:.0f} s" if late else \
                    f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= status < 300:
                return
            last = f"HTTP {status}"
            if 400 <= status < 500 and status not in (408, 429):
                break  # the receiver refuses this event: retrying will not help
        raise DeliveryError(f"{self.name}: {last} after {tried} attempt(s)")

    def _post(self, body: bytes, headers: dict[str, str], until: float, abort: threading.Event) -> int:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OSError(f"not an http(s) URL: {_mask_url(self.url)}")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=max(0.01, until - time.monotonic()))
        if parts.username:  # credentials in the URL: Basic auth
            user, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
            headers = {**headers, "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        watchdog = _Watchdog(conn, until, abort)
        try:
            conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
            response = conn.getresponse()
            response.read(64 * 1024)  # the body is not used; a bounded read ends the exchange
            return response.status
        finally:
            watchdog.done.set()
            conn.close()


@dataclass
class FileSink:
    path: Path
    patterns: list[str] = field(default_factory=lambda: ["*"])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def deliver(self, event: Event, deadline: float, abort: threading.Event) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(event.to_json() + "\n")


@dataclass
class CommandSink:
    command: list[str] | str
    patterns: list[str] = field(default_factory=lambda: ["*"])
    timeout_s: float = 30.0

    @property
    def name(self) -> str:
        return f"command {self.command if isinstance(self.command, str) else ' '.join(self.command)}"

    def deliver(self, event: Event, deadline: float, abort: threading.Event) -> None:
        env = {**os.environ, "MLOPS_EVENT_TYPE": event.type, "MLOPS_EVENT_SUBJECT": event.subject}
        until = min(deadline, time.monotonic() + self.timeout_s)
        try:  # a session of its own: on a timeout the whole group goes, grandchildren included
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env, shell=isinstance(self.command, str),
                                    start_new_session=True)
        except OSError as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None
        data: str | None = event.to_json()
        while True:
            try:
                out, errs = proc.communicate(data, timeout=max(0.01, min(0.2, until - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                data = None  # written already; communicate() goes on reading
                if abort.is_set() or time.monotonic() >= until:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.communicate()
                    raise DeliveryError(f"{self.name}: still running at its deadline (at most {self.timeout_s:.0f} s); "
                                        "its process group was killed") from None
        if proc.returncode != 0:
            tail = (errs or out).strip().splitlines()[-1:] or [""]
            raise DeliveryError(f"{self.name}: exit code {proc.returncode} {tail[0]}")


class DeliveryError(Exception):
    pass


@dataclass(eq=False)
class _Delivery:
    sink: Sink
    event: Event
    deadline: float
    abort: threading.Event = field(default_factory=threading.Event)
    settled: bool = False  # delivered or dead-lettered: each is recorded once


class Dispatcher:
    """Hands each event to the sinks whose filters match, on a few daemon threads: a slow receiver never
    holds up a command, and a command never waits past its drain limit for one."""

    def __init__(self, sinks: list[Sink], dead_letter: Path, warn: Callable[[str], None], workers: int = 4,
                 deadline_s: float | None = None) -> None:
        self.sinks = sinks
        self.dead_letter = dead_letter
        self.warn = warn
        self.workers = workers
        self.deadline_s = _seconds() if deadline_s is None else deadline_s
        self._queue: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pending: set[_Delivery] = set()
        self._cond = threading.Condition()  # the pending deliveries and the worker threads
        self._dead_lock = threading.Lock()  # the dead-letter file (written from delivery threads)

    def publish(self, event: Event) -> None:
        for sink in self.sinks:
            if matches(event.type, sink.patterns):
                self.send(sink, event)

    def send(self, sink: Sink, event: Event) -> None:
        """Deliver one event to one sink (whatever its filters: a mail to the recipients it names)."""
        delivery = _Delivery(sink, event, time.monotonic() + self.deadline_s)
        with self._cond:
            self._pending.add(delivery)  # tracked before any worker can see it
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, daemon=True, name="events")
                self._threads.append(thread)
                thread.start()
        self._queue.put(delivery)

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery.abort.is_set():
                continue  # given up by drain(), and dead-lettered there
            reason: str | None = None
            try:
                delivery.sink.deliver(delivery.event, delivery.deadline, delivery.abort)
            except DeliveryError as exc:
                reason = str(exc)
            except Exception as exc:  # a sink must never take the command down
                reason = f"{type(exc).__name__}: {exc}"
            self._settle(delivery, reason)

    def _settle(self, delivery: _Delivery, reason: str | None) -> None:
        with self._cond:
            if delivery.settled:
                return
            delivery.settled = True  # claimed: only this call writes its dead letter
        try:
            if reason is not None:
                self._dead(delivery.sink, delivery.event, reason)
        finally:  # pending until its dead letter is on disk: drain() never returns before that
            with self._cond:
                self._pending.discard(delivery)
                self._cond.notify_all()

    def _dead(self, sink: Sink, event: Event, reason: str) -> None:
        self.warn(f"event {event.type} ({event.subject}) not delivered to {sink.name}: {reason}; "
                  f"kept in {self.dead_letter}")
        record = {"sink": sink.name, "reason": reason, "event": event.cloudevent()}
        ensure_dir(self.dead_letter.parent)
        with self._dead_lock, os.fdopen(open_private(self.dead_letter), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait at most timeout_s for deliveries in flight; what is still pending is aborted and goes to the
        dead-letter file. The delivery threads are daemons: nothing keeps the process alive after this."""
        timeout_s = _seconds() if timeout_s is None else timeout_s
        end = time.monotonic() + timeout_s
        with self._cond:
            while self._pending and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            late = list(self._pending)
        for delivery in late:
            delivery.abort.set()
            self._settle(delivery, f"still undelivered after {timeout_s:.0f} s when the command ended")
