"""The endpoint host under hostile clients on 127.0.0.1, with bounded load: slow bodies, slow or absent
headers, connection floods, deep JSON, and a workspace deleted under it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_gitops.commands.apply import apply
from tests.serving_helpers import SAMPLE, Host, served_tree, stop_host

pytestmark = pytest.mark.slow


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Host]:
    """One ONNX deployment that takes one request at a time; small limits so that the tests stay short."""
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    monkeypatch.setenv("MLOPS_GITOPS_HOST_MAX_CONNECTIONS", "40")
    monkeypatch.setenv("MLOPS_GITOPS_HOST_HEADER_TIMEOUT_S", "1.5")
    monkeypatch.setenv("MLOPS_GITOPS_HOST_BODY_TIMEOUT_S", "2")
    root = served_tree(tmp_path / "repo", {"blue": 100})
    assert apply(str(root), auto_approve=True) == 0
    ws = root / ".mlops" / "dev"
    yield Host(ws)
    stop_host(ws)


def connect(host: Host) -> socket.socket:
    port = int(host.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_slow_body_holds_no_slot_and_times_out(host: Host) -> None:
    slow = connect(host)
    body = json.dumps(SAMPLE).encode()
    slow.sendall(b"POST /endpoints/cancer/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"authorization: Bearer " + host.keys[0].encode() + b"\r\ncontent-length: " +
                 str(len(body)).encode() + b"\r\n\r\n" + body[:10])
    # the deployment takes one request at a time; the slow client has not finished its body, so others pass
    for _ in range(5):
        assert host.score(SAMPLE).status_code == 200
    answer = read_all(slow)  # the host gives up on the body at its deadline and closes the connection
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in answer
    assert host.score(SAMPLE).status_code == 200


@pytest.mark.parametrize("sent", [b"", b"POST /endpoints/cancer/score HTTP/1.1\r\nhost: x\r\n"])
def test_headers_that_never_complete_get_408_and_a_closed_connection(host: Host, sent: bytes) -> None:
    sock = connect(host)
    sock.sendall(sent)
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"headers did not arrive within 1.5 s" in answer


def test_connections_over_the_cap_are_refused_at_once_and_descriptors_stay_bounded(host: Host) -> None:
    idle = [connect(host) for _ in range(40)]
    try:
        refused = []
        for _ in range(200):  # a flood of half-open connections: each one over the cap is answered and closed
            sock = connect(host)
            refused.append(read_all(sock))
            sock.close()
        assert all(r.startswith(b"HTTP/1.1 503") and b"too many connections" in r for r in refused)
        fds = len(os.listdir(f"/proc/{host.pid}/fd"))
        assert fds < 40 + 100, f"the host holds {fds} descriptors"
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 30  # the idle ones are closed by the host at their header deadline too
    while time.monotonic() < deadline:
        try:
            if host.score(SAMPLE).status_code == 200:
                break
        except Exception:
            pass
        time.sleep(0.05)
    assert host.score(SAMPLE).status_code == 200


def test_a_deeply_nested_json_body_is_a_400(host: Host) -> None:
    res = host.score(None, raw=b"[" * 100_000 + b"]" * 100_000)
    assert res.status_code == 400 and "not valid JSON" in res.json()["error"]
    assert host.score(SAMPLE).status_code == 200


def test_the_host_exits_when_its_workspace_folder_is_deleted(host: Host) -> None:
    shutil.rmtree(host.workspace)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(host.pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{host.pid}/status").read_text().split("State:")[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the endpoint host kept running without its workspace")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def test_instance_count_is_bounded_by_the_machine_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    monkeypatch.setenv("MLOPS_GITOPS_MAX_WORKERS", "3")
    root = served_tree(tmp_path / "repo", {"blue": 100}, green="script")
    green = root / "deployments" / "green.yml"
    green.write_text(green.read_text().replace("instance_count: 1", "instance_count: 150"))
    ws = root / ".mlops" / "dev"
    try:
        assert apply(str(root), auto_approve=True) == 0
        assert "instance_count 150 is more than this machine runs: it gets 3 worker processes" in \
            capsys.readouterr().err
        host = Host(ws)
        assert host.score({"data": [[1]]}, deployment="green").status_code == 200
        assert len(children(host.pid)) == 3, "three scoring workers, not 150"
    finally:
        stop_host(ws)
