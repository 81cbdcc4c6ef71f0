"""Deliver events to the sinks configured in mlops.yaml: webhook, JSON-lines file, command.

Deliveries run on a small thread pool so that apply never waits on a slow receiver; a command ends by
draining them for a bounded time. A webhook is retried with exponential backoff; an event that could
not be delivered after the last attempt (or before the drain deadline) goes to a dead-letter file.
Secrets (the webhook's HMAC key) are never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mlops_gitops.events.model import Event, matches
from mlops_gitops.fsutil import ensure_dir, open_private

SIGNATURE_HEADER = "X-MLOps-Signature"  # sha256=<hex HMAC of the body>, as GitHub and MLflow sign theirs


class Sink(Protocol):
    patterns: list[str]

    @property
    def name(self) -> str: ...

    def deliver(self, event: Event) -> None: ...


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _mask_url(url: str) -> str:
    """Drop credentials and query strings (tokens) from a URL before it appears in a message."""
    base, _, _ = url.partition("?")
    if "@" in base.split("//", 1)[-1].split("/", 1)[0]:
        scheme, _, rest = base.partition("//")
        base = f"{scheme}//***@{rest.split('@', 1)[1]}"
    return base


@dataclass
class WebhookSink:
    url: str
    secret: str | None = None
    patterns: list[str] = field(default_factory=lambda: ["*"])
    attempts: int = 4
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    @property
    def name(self) -> str:
        return f"webhook {_mask_url(self.url)}"

    def deliver(self, event: Event) -> None:
        body = event.to_json().encode()
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8", "User-Agent": "mlops-gitops",
                   "ce-id": event.id, "ce-type": event.type}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break  # the receiver refuses this event: retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        raise DeliveryError(f"{self.name}: {last} after {attempt + 1} attempt(s)")


@dataclass
class FileSink:
    path: Path
    patterns: list[str] = field(default_factory=lambda: ["*"])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def deliver(self, event: Event) -> None:
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

    def deliver(self, event: Event) -> None:
        env = {**os.environ, "MLOPS_EVENT_TYPE": event.type, "MLOPS_EVENT_SUBJECT": event.subject}
        try:
            proc = subprocess.run(self.command, input=event.to_json(), text=True, capture_output=True, env=env,
                                  shell=isinstance(self.command, str), timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise DeliveryError(f"{self.name}: exit code {proc.returncode} {tail[0]}")


class DeliveryError(Exception):
    pass


class Dispatcher:
    """Hands each event to the sinks whose filters match, in the background."""

    def __init__(self, sinks: list[Sink], dead_letter: Path, warn: Callable[[str], None]) -> None:
        self.sinks = sinks
        self.dead_letter = dead_letter
        self.warn = warn
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[Future[None], tuple[Sink, Event]] = {}
        self._lock = threading.Lock()  # the pool and the pending deliveries
        self._dead_lock = threading.Lock()  # the dead-letter file (written from delivery threads)

    def publish(self, event: Event) -> None:
        for sink in self.sinks:
            if not matches(event.type, sink.patterns):
                continue
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="events")
                fut = self._pool.submit(self._deliver, sink, event)
                self._pending[fut] = (sink, event)
            # Outside the lock: a delivery that already finished runs _forget here, and _forget takes the lock.
            fut.add_done_callback(self._forget)

    def _forget(self, fut: Future[None]) -> None:
        with self._lock:
            self._pending.pop(fut, None)

    def _deliver(self, sink: Sink, event: Event) -> None:
        try:
            sink.deliver(event)
        except DeliveryError as exc:
            self._dead(sink, event, str(exc))
        except Exception as exc:  # a sink must never take the command down
            self._dead(sink, event, f"{type(exc).__name__}: {exc}")

    def _dead(self, sink: Sink, event: Event, reason: str) -> None:
        self.warn(f"event {event.type} ({event.subject}) not delivered to {sink.name}: {reason}; "
                  f"kept in {self.dead_letter}")
        record = {"sink": sink.name, "reason": reason, "event": event.cloudevent()}
        ensure_dir(self.dead_letter.parent)
        with self._dead_lock, os.fdopen(open_private(self.dead_letter), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def drain(self, timeout_s: float = 15.0) -> None:
        """Wait (bounded) for deliveries in flight; what is still pending goes to the dead-letter file."""
        with self._lock:
            pending = dict(self._pending)
        if pending:
            _, late = wait(pending, timeout=timeout_s)
            for fut in late:
                sink, event = pending[fut]
                fut.cancel()
                self._dead(sink, event, f"still undelivered after {timeout_s:.0f} s when the command ended")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
