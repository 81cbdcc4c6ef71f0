"""Lifecycle events: recorded in the workspace, delivered as CloudEvents to a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys
import threading
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


def test_a_delivery_finished_before_it_is_tracked_does_not_deadlock(tmp_path: Path) -> None:
    """A fast sink can finish before publish() registers its callback; the callback then runs at once."""
    from concurrent.futures import Executor, Future

    from mlops_gitops.events.model import Event
    from mlops_gitops.events.sinks import CommandSink, Dispatcher, FileSink

    class Inline(Executor):  # runs each delivery before submit() returns: the race, every time
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            done: Future[Any] = Future()
            done.set_result(fn(*args, **kwargs))
            return done

    failing = CommandSink(["false"])  # its dead letter is written while publish() is still submitting
    dispatcher = Dispatcher([FileSink(tmp_path / "events.jsonl"), failing], tmp_path / "dead.jsonl",
                            lambda _m: None)
    dispatcher._pool = Inline()  # type: ignore[assignment]
    worker = threading.Thread(target=dispatcher.publish, args=(Event("model.registered", "test", "model:m:1"),),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "publish() deadlocked on its own lock"
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 1
    assert "exit code 1" in (tmp_path / "dead.jsonl").read_text()
    assert dispatcher._pending == {}
