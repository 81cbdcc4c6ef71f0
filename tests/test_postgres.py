"""The metadata store on a real PostgreSQL server (127.0.0.1:5432), including lock contention."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.backends.local import lock as lockmod
from mlops_gitops.commands.apply import apply
from tests.helpers import Result, write

Cli = Callable[..., Result]
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

pytestmark = pytest.mark.postgres


def use_database(repo: Path, url: str) -> None:
    write(repo / "mlops.yaml", f"""
        workspaces:
          dev: {{backend: local, path: .mlops/dev, database: "{url}"}}
        default_workspace: dev
        exclude: [".github/**", "src/**", "**/conda*.yml", "azure-pipelines.yml"]
    """)


def test_apply_to_postgres(cli: Cli, example: Path, pg_url: str) -> None:
    use_database(example, pg_url)
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 0, res.err
    snap = LocalBackend(example / ".mlops" / "dev", pg_url).read()
    assert snap.serial == 14 and Address(Kind.MODEL, "cancer-onnx", "1") in snap.resources
    assert not (example / ".mlops" / "dev" / "state.db").exists()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM mg_resources").fetchone() == (14,)
    assert "Nothing to do" in cli("apply", str(example), "--auto-approve").out
    assert cli("endpoint", "set-traffic", "cancer", "blue=0", "green=100", "-C", str(example)).code == 0
    assert cli("drift", str(example)).code == 2


def test_second_apply_refuses_while_locked(cli: Cli, example: Path, pg_url: str) -> None:
    use_database(example, pg_url)
    holder = LocalBackend(example / ".mlops" / "dev", pg_url)
    with holder.lock("apply", reason="release train 12") as info:
        res = cli("apply", str(example), "--auto-approve")
        assert res.code == 1
        assert "the workspace is locked" in res.err and info.id in res.err and "release train 12" in res.err
        assert "force-unlock" in res.err
    holder.close()
    assert LocalBackend(example / ".mlops" / "dev", pg_url).read().serial == 0
    assert cli("apply", str(example), "--auto-approve").code == 0


def test_second_apply_waits_for_the_lock(example: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use_database(example, pg_url)
    refused = threading.Event()
    original = lockmod._AdvisoryLock.try_acquire

    def observed(self: lockmod._AdvisoryLock) -> bool:
        got = original(self)
        if not got:
            refused.set()
        return got

    monkeypatch.setattr(lockmod._AdvisoryLock, "try_acquire", observed)
    holder = LocalBackend(example / ".mlops" / "dev", pg_url)
    results: list[int] = []
    with holder.lock("apply"):
        waiter = threading.Thread(target=lambda: results.append(apply(str(example), auto_approve=True,
                                                                      lock_timeout=60)))
        waiter.start()
        assert refused.wait(30), "the second apply never tried the lock"
        assert results == [], "it must not proceed while the lock is held"
    waiter.join(60)
    holder.close()
    assert results == [0]
    assert LocalBackend(example / ".mlops" / "dev", pg_url).read().serial == 14


def test_lock_of_a_dead_session_is_taken_over(cli: Cli, example: Path, pg_url: str) -> None:
    use_database(example, pg_url)
    backend = LocalBackend(example / ".mlops" / "dev", pg_url)
    backend.ensure()
    # A lock row whose holder's session is gone (the advisory lock died with it).
    from sqlalchemy import insert

    from mlops_gitops.backends.local import db

    with backend.store.engine.begin() as conn:
        conn.execute(insert(db.locks).values(name="workspace", id="dead-beef", operation="apply", who="ghost",
                                             host="elsewhere", pid=1, created="2026-01-01T00:00:00", reason=""))
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 0
    assert "taking over a stale lock" in res.err and "ghost" in res.err
    assert backend.lock_holder() is None


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://postgres@127.0.0.1:1/x", "cannot use workspace database postgresql://postgres@127.0.0.1:1/x"),
    ("postgresql://postgres@127.0.0.1:5432/no_such_db_here", "no_such_db_here"),
    ("nosuchdialect://x/y", "invalid database URL"),
    ("postgresql://postgres:s3cret@127.0.0.1:1/x", "postgres:***@127.0.0.1"),
])
def test_bad_database_url(cli: Cli, example: Path, url: str, message: str) -> None:
    use_database(example, url)
    for argv in (("plan", str(example)), ("apply", str(example), "--auto-approve")):
        res = cli(*argv)
        assert res.code == 1 and message in res.err and "Traceback" not in res.err
        assert "s3cret" not in res.err + res.out
