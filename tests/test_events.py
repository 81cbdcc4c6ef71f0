"""Lifecycle events: recorded in the workspace, delivered as CloudEvents to a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Result, copy_example

Cli = Callable[..., Result]
SECRET = "s3cret-hook-key"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that fails the first `failures` attempts of every event."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: Counter[str] = Counter()
        self.delivered: list[dict[str, Any]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers["ce-id"]
                receiver.attempts[event_id] += 1
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if self.headers.get("X-MLOps-Signature") != expected:
                    receiver.bad_signatures += 1
                if receiver.attempts[event_id] <= receiver.failures:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.delivered.append({"content_type": self.headers["Content-Type"], **json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mlops"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.server.shutdown()


def with_notifications(root: Path, text: str) -> Path:
    (root / "mlops.yaml").write_text((root / "mlops.yaml").read_text() + "notifications:\n" + text)
    return root


@pytest.mark.slow
def test_webhook_gets_signed_cloudevents_after_retries(tmp_path: Path, cli: Cli, receiver: Receiver,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    root = with_notifications(copy_example(tmp_path / "repo"),
                              f"  - {{type: webhook, url: '{receiver.url}', secret: '${{HOOK_SECRET}}', "
                              "events: ['model.*']}\n")
    res = cli("apply", "--auto-approve", cwd=root)
    assert res.code == 0, res.err
    # apply returned: its deliveries were drained (each needed 3 attempts: two 503s, then 204)
    assert sorted(e["subject"] for e in receiver.delivered) == ["model:cancer-onnx:1", "model:cancer-sklearn:1"]
    assert set(receiver.attempts.values()) == {3} and receiver.bad_signatures == 0
    event = receiver.delivered[0]
    assert event["specversion"] == "1.0" and event["type"] == "model.registered"
    assert event["source"] == "mlops-gitops://local/dev" and event["content_type"].startswith(
        "application/cloudevents+json")
    assert not (root / ".mlops" / "dev" / "events" / "dead-letter.jsonl").exists()
    assert SECRET not in res.out + res.err
    listed = cli("events", "list", "--format", "json", cwd=root).out
    assert SECRET not in listed and '"type":"apply.completed"' in listed


@pytest.mark.slow
def test_a_refusing_webhook_never_fails_apply_and_keeps_a_dead_letter(tmp_path: Path, cli: Cli) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = with_notifications(copy_example(tmp_path / "repo"),
                              f"  - {{type: webhook, url: 'http://127.0.0.1:{port}/x?token=abc', "
                              "events: ['apply.*']}\n")
    res = cli("apply", "--auto-approve", cwd=root)
    assert res.code == 0 and "Apply complete!" in res.out
    assert "not delivered to webhook http://127.0.0.1" in res.err and "token=abc" not in res.err
    dead = [json.loads(line) for line in
            (root / ".mlops" / "dev" / "events" / "dead-letter.jsonl").read_text().splitlines()]
    assert [d["event"]["type"] for d in dead] == ["apply.completed"]
    assert "after 4 attempt(s)" in dead[0]["reason"]


def test_file_and_command_sinks_with_filters(tmp_path: Path, cli: Cli) -> None:
    seen = tmp_path / "seen.txt"
    script = f"import sys, json; open({str(seen)!r}, 'a').write(json.load(sys.stdin)['type'] + '\\n')"
    root = with_notifications(copy_example(tmp_path / "repo"),
                              "  - {type: file, path: out/events.jsonl, events: ['deployment.*', 'traffic.*']}\n"
                              f"  - {{type: command, command: [{sys.executable!r}, '-c', {script!r}], "
                              "events: ['apply.completed']}\n")
    assert cli("apply", "--auto-approve", cwd=root).code == 0
    lines = [json.loads(x) for x in (root / "out" / "events.jsonl").read_text().splitlines()]
    assert sorted(e["type"] for e in lines) == ["deployment.created", "deployment.created", "traffic.changed"]
    assert seen.read_text().split() == ["apply.completed"]


def test_events_list_and_tail_read_them_back(example: Path, cli: Cli) -> None:
    assert cli("apply", "--auto-approve", cwd=example).code == 0
    assert cli("endpoint", "set-traffic", "cancer", "blue=50", "green=50", cwd=example).code == 0
    assert cli("drift", cwd=example).code == 2
    listed = cli("events", "list", "--type", "traffic.*", "--type", "drift.*", cwd=example).out.splitlines()
    assert [line.split()[1] for line in listed] == ["traffic.changed", "traffic.changed", "drift.detected"]
    assert "outside_git=True" in listed[1]
    tail = cli("events", "tail", "-n", "1", "--format", "json", cwd=example).out
    drift = json.loads(tail)
    assert drift["type"] == "drift.detected" and drift["data"]["resources"][0]["address"] == "traffic:cancer"


def test_many_fast_deliveries_are_tracked_and_dead_lettered_once(tmp_path: Path) -> None:
    """Deliveries that finish at once (as fast as publish() can hand them out) are all accounted for."""
    from mlops_gitops.events.model import Event
    from mlops_gitops.events.sinks import DeliveryError, Dispatcher, FileSink

    class Refusing:
        patterns = ["*"]
        name = "refusing"

        def deliver(self, event: Event, deadline: float, abort: threading.Event) -> None:
            raise DeliveryError("refused")

    dispatcher = Dispatcher([FileSink(tmp_path / "events.jsonl"), Refusing()], tmp_path / "dead.jsonl",
                            lambda _m: None)
    for i in range(200):
        dispatcher.publish(Event("model.registered", "test", f"model:m:{i}"))
    dispatcher.drain(30)
    assert dispatcher.pending() == 0
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 200
    dead = [json.loads(line)["event"]["subject"] for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert sorted(dead) == sorted(f"model:m:{i}" for i in range(200))


class SlowReceiver:
    """A raw TCP 'webhook' on 127.0.0.1: `trickle` answers one byte every 0.5 s forever; `silent` never
    answers. It records when the client gives up (the connection is closed on it)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.connections = 0
        self.connected = threading.Event()
        self.closed_by_client = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.connected.set()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            payload = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000
            for byte in payload:
                if self.stop.wait(0.5):
                    return
                try:
                    if self.mode == "trickle":
                        conn.sendall(bytes([byte]))
                    elif conn.recv(65536, socket.MSG_DONTWAIT) == b"":  # the rest of the request, or EOF
                        break
                except BlockingIOError:
                    continue
                except OSError:
                    break
            self.closed_by_client.set()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.slow
def test_a_trickling_webhook_never_keeps_the_cli_from_exiting(tmp_path: Path) -> None:
    import os
    import subprocess

    slow = SlowReceiver("trickle")
    try:
        root = with_notifications(copy_example(tmp_path / "repo"),
                                  f"  - {{type: webhook, url: '{slow.url}', events: ['apply.*']}}\n")
        env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "none", "MLOPS_GITOPS_EVENT_DEADLINE_S": "4"}
        done = subprocess.run([sys.executable, "-m", "mlops_gitops", "apply", str(root), "--auto-approve"],
                              capture_output=True, text=True, env=env, timeout=120)  # hung forever before
    finally:
        slow.close()
    assert done.returncode == 0, done.stderr
    dead = (root / ".mlops" / "dev" / "events" / "dead-letter.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"]["type"] for line in dead] == ["apply.completed"], "one dead letter"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["trickle", "silent"])
def test_every_delivery_has_a_total_deadline_and_one_dead_letter(tmp_path: Path, mode: str) -> None:
    from mlops_gitops.events.model import Event
    from mlops_gitops.events.sinks import Dispatcher, WebhookSink

    slow = SlowReceiver(mode)
    try:
        dispatcher = Dispatcher([WebhookSink(slow.url, timeout_s=1.0, backoff_s=0.1)], tmp_path / "dead.jsonl",
                                lambda _m: None, deadline_s=2.5)
        dispatcher.publish(Event("model.registered", "test", "model:m:1"))
        drained = threading.Thread(target=dispatcher.drain, args=(20.0,), daemon=True)
        drained.start()
        drained.join(30)
        assert not drained.is_alive(), "the delivery outlived its deadline"
        assert slow.closed_by_client.wait(10), "the client never gave up the connection"
        assert 2 <= slow.connections <= 4, "attempts fit inside the deadline"
    finally:
        slow.close()
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert len(dead) == 1 and "attempt(s)" in dead[0]["reason"]


def test_drain_gives_up_at_its_limit_and_writes_each_dead_letter_once(tmp_path: Path) -> None:
    from mlops_gitops.events.model import Event
    from mlops_gitops.events.sinks import Dispatcher, WebhookSink

    slow = SlowReceiver("silent")
    try:
        dispatcher = Dispatcher([WebhookSink(slow.url, timeout_s=60)], tmp_path / "dead.jsonl", lambda _m: None,
                                deadline_s=60)
        dispatcher.publish(Event("model.registered", "test", "model:m:1"))
        assert slow.connected.wait(10), "the delivery never started"
        drained = threading.Thread(target=dispatcher.drain, args=(1.0,), daemon=True)
        drained.start()
        drained.join(30)
        assert not drained.is_alive()
        assert slow.closed_by_client.wait(10), "drain aborted the delivery: its connection was closed"
    finally:
        slow.close()
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert len(dead) == 1 and "when the command ended" in dead[0]["reason"]


def test_a_command_sink_past_its_deadline_loses_its_whole_process_group(tmp_path: Path) -> None:
    from mlops_gitops.events.model import Event
    from mlops_gitops.events.sinks import CommandSink, DeliveryError

    pid_file = tmp_path / "grandchild.pid"
    sink = CommandSink(f"sleep 300 & echo $! > {pid_file}; wait", timeout_s=1.0)
    with pytest.raises(DeliveryError, match="process group was killed"):
        sink.deliver(Event("model.registered", "test", "model:m:1"), float("inf"), threading.Event())
    pid = int(pid_file.read_text())

    def state() -> str:  # SIGKILL is delivered asynchronously: wait for it to land, bounded
        try:
            return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
        except FileNotFoundError:
            return "gone"

    deadline = time.monotonic() + 10
    while state() not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state() in ("gone", "Z"), f"the grandchild is still {state()}"
