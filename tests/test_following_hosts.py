"""Endpoint hosts that follow a shared workspace (`serve --follow`): CI applies on one machine, two long-lived
hosts converge (load, readiness, traffic) with no failed request, and `endpoint show` says who serves what."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_gitops.backends.local import LocalBackend
from tests.helpers import Result, commit_all, git, init_repo, write
from tests.serving_helpers import SAMPLE, served_tree, stop_host

Cli = Callable[..., Result]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Fleet:
    """The origin repository, a CI checkout that applies, and the checkouts of the hosts that follow."""

    def __init__(self, root: Path, database: str, artifacts: str) -> None:
        self.root, self.database, self.artifacts = root, database, artifacts
        self.followers: dict[str, subprocess.Popen[str]] = {}

    def clone(self, name: str) -> Path:
        git(self.root, "clone", "-q", str(self.root / "origin"), str(self.root / name))
        return self.root / name

    def backend(self) -> LocalBackend:
        return LocalBackend(self.root / "ci" / ".mlops" / "prod", self.database, artifacts=self.artifacts,
                            serving="hosts")

    def follow(self, name: str) -> None:
        checkout = self.clone(name)
        self.followers[name] = subprocess.Popen(
            [sys.executable, "-m", "mlops_gitops", "serve", "--follow", "--interval", "0.1", "--host-id", name],
            cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))

    def hosts(self) -> dict[str, dict[str, Any]]:
        return {h["id"]: h for h in self.backend().serving.hosts()}

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 120) -> dict[str, Any]:
        """Until every following host's report satisfies predicate (and is at the workspace's revision)."""
        deadline = time.monotonic() + timeout
        hosts: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for name, proc in self.followers.items():
                assert proc.poll() is None, f"{name} exited: {proc.communicate()[0]}"
            serial = self.backend().serial()
            hosts = self.hosts()
            if set(hosts) == set(self.followers) and all(
                    h["serial"] == serial and predicate(h["status"]) for h in hosts.values()):
                return hosts
            time.sleep(0.05)
        raise AssertionError(f"the hosts never converged: {json.dumps(hosts, indent=2)}")

    def stop(self) -> dict[str, tuple[int, str]]:
        done = {}
        for name, proc in self.followers.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            done[name] = (proc.returncode, out)
            stop_host(self.root / name / ".mlops" / "prod")  # a follower that was killed leaves its host
        self.followers.clear()
        return done


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, az_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    origin = served_tree(tmp_path / "origin", {"blue": 100, "green": 0}, green="script",
                         settings="request_settings: {max_concurrent_requests_per_instance: 4}\n")
    write(origin / "mlops.yaml", f"""
        workspaces:
          prod: {{path: .mlops/prod, database: "{pg_url}", artifacts: "{az_url}", runtime: process,
                  serving: hosts}}
        default_workspace: prod
        exclude: ['src/**']
    """)
    init_repo(origin, "An endpoint served by the hosts that follow the workspace")
    fleet = Fleet(tmp_path, pg_url, az_url)
    yield fleet
    fleet.stop()


def keys(fleet: Fleet) -> str:
    return fleet.backend().store.endpoint_keys("cancer")[0]


class Clients:
    """Requests to every host, all the time, counting who answered and what failed."""

    def __init__(self, urls: list[str], key: str) -> None:
        self.urls, self.key = urls, key
        self.answers: dict[str, Counter[str]] = {u: Counter() for u in urls}
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._hammer, args=(u,)) for u in urls for _ in range(2)]

    def _hammer(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not self.stop.is_set():
                res = client.post("/endpoints/cancer/score", json=SAMPLE,
                                  headers={"authorization": f"Bearer {self.key}"})
                if res.status_code != 200:
                    self.failures.append(f"{url}: {res.status_code} {res.text[:200]}")
                else:
                    self.answers[url][res.headers["azureml-model-deployment"]] += 1

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def seen(self, deployment: str) -> bool:
        return all(c[deployment] > 0 for c in self.answers.values())


def routes(endpoint: dict[str, int]) -> Callable[[dict[str, Any]], bool]:
    return lambda status: (status.get("routes") or {}).get("cancer") == endpoint


def test_two_hosts_follow_applies_from_ci_without_a_failed_request(fleet: Fleet, cli: Cli) -> None:
    ci = fleet.clone("ci")
    res = cli("apply", str(ci), "--auto-approve")
    assert res.code == 0, res.err
    assert not (ci / ".mlops" / "prod" / "host.json").exists(), "with serving: hosts, the apply starts no host"

    fleet.follow("web-1")
    fleet.follow("web-2")
    hosts = fleet.wait_for(routes({"blue": 100}))
    urls = [h["url"] for h in hosts.values()]
    assert len(set(urls)) == 2
    assert all(h["status"]["deployments"]["cancer/green"]["state"] == "ready" for h in hosts.values())

    endpoint = ci / "endpoints" / "cancer.yml"
    with Clients(urls, keys(fleet)) as clients:
        deadline = time.monotonic() + 30
        while not clients.seen("blue") and time.monotonic() < deadline:
            time.sleep(0.02)
        endpoint.write_text(endpoint.read_text().replace("blue: 100", "blue: 0").replace("green: 0", "green: 100"))
        commit_all(ci, "All traffic to green")
        res = cli("apply", str(ci), "--auto-approve")
        assert res.code == 0, res.err
        fleet.wait_for(routes({"green": 100}))
        deadline = time.monotonic() + 30
        while not clients.seen("green") and time.monotonic() < deadline:
            time.sleep(0.02)
    assert clients.failures == []
    assert clients.seen("blue") and clients.seen("green"), clients.answers

    res = cli("endpoint", "show", "cancer", cwd=ci)
    assert res.code == 0, res.err
    shown = json.loads(res.out)
    assert shown["traffic"] == {"blue": 0, "green": 100}
    assert {h["host"]: (h["state"], h["traffic"]) for h in shown["hosts"]} == {
        "web-1": ("current", {"green": 100}), "web-2": ("current", {"green": 100})}

    # A deployment that cannot become ready: the hosts report it and keep serving the traffic they had.
    green = ci / "deployments" / "green.yml"
    green.write_text(green.read_text() + "environment_variables: {FAIL_INIT: '1'}\n")
    endpoint.write_text(endpoint.read_text().replace("blue: 0", "blue: 50").replace("green: 100", "green: 50"))
    commit_all(ci, "Green with a broken init")
    with Clients(urls, keys(fleet)) as clients:
        assert cli("apply", str(ci), "--auto-approve").code == 0
        hosts = fleet.wait_for(lambda s: s["deployments"]["cancer/green"]["state"] == "failed")
    assert clients.failures == []
    for h in hosts.values():
        assert "FAIL_INIT" in h["status"]["deployments"]["cancer/green"]["error"]
        assert h["status"]["routes"]["cancer"] == {"green": 100}
        assert "green not ready" in h["status"]["held"]["cancer"]
    shown = json.loads(cli("endpoint", "show", "cancer", cwd=ci).out)
    assert all("green not ready" in h["held"] for h in shown["hosts"])

    stopped = fleet.stop()
    assert {name: code for name, (code, _) in stopped.items()} == {"web-1": 0, "web-2": 0}
    assert "Following the workspace as host web-1" in stopped["web-1"][1]
    assert fleet.hosts() == {}, "a follower that stops removes its report"


def test_a_rollout_applied_from_ci_is_judged_by_the_figures_the_following_hosts_record(
        fleet: Fleet, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The apply runs where no host runs: each step's split reaches both hosts through the workspace, and the
    pause is judged by what both recorded in the shared store."""
    monkeypatch.setenv("MLOPS_GITOPS_FIGURES_INTERVAL_S", "0.1")
    ci = fleet.clone("ci")
    assert cli("apply", str(ci), "--auto-approve").code == 0
    fleet.follow("web-1")
    fleet.follow("web-2")
    urls = [h["url"] for h in fleet.wait_for(routes({"blue": 100})).values()]
    endpoint = ci / "endpoints" / "cancer.yml"
    endpoint.write_text(endpoint.read_text().replace("blue: 100", "blue: 0").replace("green: 0", "green: 100")
                        + "x-gitops:\n  rollout:\n    steps: [10, 50, 100]\n    pause: 2s\n"
                          "    health: {max_error_rate: 0.01, min_requests: 1}\n")
    commit_all(ci, "Roll green out in steps")
    with Clients(urls, keys(fleet)) as clients:
        res = cli("apply", str(ci), "--auto-approve")
        assert res.code == 0, res.out + res.err
        fleet.wait_for(routes({"green": 100}))
    assert clients.failures == []
    assert clients.seen("blue") and clients.seen("green"), clients.answers
    status = json.loads(cli("rollout", "status", "cancer", "--format", "json", cwd=ci).out)
    assert status["state"] == "completed: green at 100%" and [s["share"] for s in status["rollout"]["steps"]] == [
        10, 50]
    assert all(s["requests"] >= 1 and s["errors"] == 0 for s in status["rollout"]["steps"]), status
    assert status["figures"]["green"]["hosts"] == 2, "both hosts recorded their figures in the shared store"
