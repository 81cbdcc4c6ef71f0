"""The workspace lock: an OS-level lock that dies with its holder, plus a row saying who holds it.

SQLite workspaces use flock on <workspace>/state.lock; PostgreSQL uses a session advisory lock.
If the row exists but the OS-level lock is free, the holder died: the lock is taken over and the
previous holder is reported, so a crashed apply never wedges the workspace.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from mlops_gitops.actor import now, whoami
from mlops_gitops.backends.local import db
from mlops_gitops.errors import LockHeldError
from mlops_gitops.fsutil import ensure_dir, open_lock
from mlops_gitops.state import LockInfo

ADVISORY_KEY = 0x6D6C6F7073  # "mlops"




def _row_to_info(row: Any) -> LockInfo:
    return LockInfo(row.id, row.operation, row.who, row.host, row.pid, row.created, row.reason)


def read_holder(engine: Engine) -> LockInfo | None:
    with engine.connect() as conn:
        row = conn.execute(select(db.locks).where(db.locks.c.name == "workspace")).first()
    return _row_to_info(row) if row else None


class _OsLock:
    """Try-acquire/release of the OS-level part; implementations below."""

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class _FileLock(_OsLock):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        ensure_dir(self.path.parent)
        handle = open_lock(self.path)  # held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


class _AdvisoryLock(_OsLock):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        conn.commit()
        if not got:
            conn.close()
            return False
        self.conn = conn
        return True

    def release(self) -> None:
        if self.conn is not None:
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self.conn.commit()
            self.conn.close()
            self.conn = None


@contextmanager
def creation_lock(engine: Engine, workspace_dir: Path) -> Iterator[Connection]:
    """One transaction in which only this process creates or upgrades the tables: concurrent first applies
    on a new workspace wait here instead of failing on `table already exists`."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY + 1})
            yield conn
        return
    with open_lock(workspace_dir / "state.init.lock") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # held for the few milliseconds of creation
        try:
            with engine.begin() as conn:
                yield conn
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def os_lock_for(engine: Engine, workspace_dir: Path) -> _OsLock:
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine)
    return _FileLock(workspace_dir / "state.lock")


@contextmanager
def workspace_lock(engine: Engine, workspace_dir: Path, operation: str, reason: str, timeout: float,
                   warn: Callable[[str], None]) -> Iterator[LockInfo]:
    os_lock = os_lock_for(engine, workspace_dir)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not os_lock.try_acquire():
        if time.monotonic() >= deadline:
            holder = read_holder(engine)
            who = holder.describe() if holder else "another process"
            raise LockHeldError(
                f"the workspace is locked: {who}. Wait for it to finish, retry with --lock-timeout, "
                f"or, if you are sure no apply is running, run `mlops-gitops force-unlock "
                f"{holder.id if holder else 'ID'}`"
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)
    try:
        stale = read_holder(engine)
        if stale is not None:
            warn(f"taking over a stale lock: {stale.describe()} (that process is gone)")
        info = LockInfo(str(uuid.uuid4()), operation, whoami(), socket.gethostname(), os.getpid(), now(), reason)
        with engine.begin() as conn:
            conn.execute(delete(db.locks).where(db.locks.c.name == "workspace"))
            conn.execute(insert(db.locks).values(name="workspace", id=info.id, operation=operation, who=info.who,
                                                 host=info.host, pid=info.pid, created=info.created, reason=reason))
        try:
            yield info
        finally:
            with engine.begin() as conn:
                conn.execute(delete(db.locks).where(db.locks.c.id == info.id))
    finally:
        os_lock.release()
