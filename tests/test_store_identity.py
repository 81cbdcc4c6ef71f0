"""A workspace folder is never used with a store that is not its own: no re-registration, no lost files."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from mlops_gitops.backends.local import LocalBackend
from tests.helpers import Result, write

Cli = Callable[..., Result]
EXCLUDE = "exclude: ['.github/**', 'src/**', '**/conda*.yml', azure-pipelines.yml]\n"


def stored(ws: Path) -> set[Path]:
    return {p for p in (ws / "artifacts").rglob("*") if p.is_file()}


def test_unset_variable_in_database_is_an_error_and_writes_nothing(cli: Cli, example: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_DB", raising=False)
    write(example / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, database: \"${MLOPS_DB}\"}\n"
                                  "default_workspace: dev\n" + EXCLUDE)
    for argv in (("apply", str(example), "--auto-approve"), ("plan", str(example)), ("model", "list", "-C",
                                                                                    str(example))):
        res = cli(*argv)
        assert res.code == 1, argv
        assert "mlops.yaml:2:" in res.err and "MLOPS_DB is not set" in res.err and "Traceback" not in res.err
    assert not (example / ".mlops").exists()


def test_unset_variable_in_path_never_makes_the_repository_the_workspace(cli: Cli, example: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_DIR", raising=False)
    write(example / "mlops.yaml", "workspaces:\n  dev: {path: \"${WS_DIR}\"}\ndefault_workspace: dev\n" + EXCLUDE)
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 1 and "mlops.yaml:2:" in res.err and "WS_DIR is not set" in res.err
    # an explicit empty default is no way around it: the repository is never the workspace
    write(example / "mlops.yaml", "workspaces:\n  dev: {path: \"${WS_DIR:-.}\"}\ndefault_workspace: dev\n" + EXCLUDE)
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 1 and "holds the repository itself" in res.err
    assert not (example / "state.db").exists() and not (example / "artifacts").exists()


def test_a_default_applies_when_the_variable_is_unset(cli: Cli, example: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_DIR", raising=False)
    write(example / "mlops.yaml", "workspaces:\n  dev: {path: \"${WS_DIR:-.mlops/elsewhere}\"}\n"
                                  "default_workspace: dev\n" + EXCLUDE)
    assert cli("apply", str(example), "--auto-approve").code == 0
    assert (example / ".mlops" / "elsewhere" / "state.db").is_file()


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_an_empty_store_beside_stored_files_is_refused(cli: Cli, example: Path, damage: str) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    ws = example / ".mlops" / "dev"
    files = stored(ws)
    assert files
    if damage == "truncate":
        (ws / "state.db").write_bytes(b"")
    else:
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            (ws / name).unlink(missing_ok=True)
    for argv in (("apply", str(example), "--auto-approve"), ("plan", str(example)),
                 ("model", "list", "-C", str(example))):
        res = cli(*argv)
        assert res.code == 1, (argv, res.out)
        assert "is empty or missing" in res.err and "stored file(s)" in res.err and "move" in res.err
        assert "Traceback" not in res.err
    assert stored(ws) == files, "no stored file was deleted"
    # deliberately starting over: move the folder aside, then apply registers version 1 again
    ws.rename(ws.with_name("dev.old"))
    assert cli("apply", str(example), "--auto-approve").code == 0


def test_a_store_of_another_workspace_is_refused(cli: Cli, example: Path, tmp_path: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    other = tmp_path / "other"
    other_backend = LocalBackend(other)
    other_backend.ensure()
    other_backend.close()
    ws = example / ".mlops" / "dev"
    for name in ("state.db-wal", "state.db-shm"):
        (ws / name).unlink(missing_ok=True)
    (ws / "state.db").write_bytes((other / "state.db").read_bytes())
    res = cli("plan", str(example))
    assert res.code == 1 and "belong to workspace" in res.err


def test_garbage_collection_deletes_only_what_this_store_recorded(cli: Cli, example: Path) -> None:
    assert cli("apply", str(example), "--auto-approve").code == 0
    ws = example / ".mlops" / "dev"
    backend = LocalBackend(ws)
    foreign = b"a file this store never recorded"
    digest = hashlib.sha256(foreign).hexdigest()
    (backend.store.artifacts.path(digest)).parent.mkdir(parents=True, exist_ok=True)
    backend.store.artifacts.path(digest).write_bytes(foreign)
    orphan = ws / "orphan.bin"
    orphan.write_bytes(b"recorded, then left behind by an interrupted apply")
    orphan_digest = hashlib.sha256(orphan.read_bytes()).hexdigest()
    backend.store.record_blobs([orphan_digest])
    backend.store.artifacts.put(orphan, orphan_digest)
    assert backend.collect_garbage() == 1
    assert not backend.store.artifacts.has(orphan_digest)
    assert backend.store.artifacts.has(digest), "a file the store never recorded is not its to delete"
    backend.close()


def test_garbage_collection_is_skipped_by_the_process_that_created_the_store(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "ws")
    backend.ensure()
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    digest = hashlib.sha256(b"x").hexdigest()
    backend.store.record_blobs([digest])
    backend.store.artifacts.put(source, digest)
    assert backend.store.new_store and backend.collect_garbage() == 0 and backend.store.artifacts.has(digest)
    backend.close()
    later = LocalBackend(tmp_path / "ws")
    assert later.collect_garbage() == 1  # recorded, unreferenced, and judged by a later process
    later.close()


def test_a_store_from_before_blob_records_keeps_unknown_files(cli: Cli, example: Path) -> None:
    """Upgrading: what the store references becomes its own; files it cannot account for stay."""
    assert cli("apply", str(example), "--auto-approve").code == 0
    ws = example / ".mlops" / "dev"
    with sqlite3.connect(ws / "state.db") as conn:
        conn.execute("DROP TABLE mg_blobs")
        conn.execute("DELETE FROM mg_meta WHERE key = 'blobs_recorded'")
    (ws / "workspace.json").unlink()
    unknown = ws / "artifacts" / "sha256" / "00" / ("1" * 62)
    unknown.parent.mkdir(parents=True, exist_ok=True)
    unknown.write_bytes(b"?")
    before = stored(ws)
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 0 and "Nothing to do" in res.out
    assert stored(ws) == before
    assert (ws / "workspace.json").is_file()
    backend = LocalBackend(ws)
    referenced = {f.sha256 for r in backend.read().resources.values() for f in r.files}
    with backend.store.engine.connect() as conn:
        recorded = {row[0] for row in conn.exec_driver_sql("SELECT sha256 FROM mg_blobs")}
    backend.close()
    assert referenced and referenced <= recorded and "00" + "1" * 62 not in recorded


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"mlops_test_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgres_workspace_with_its_variable_unset_or_another_database(cli: Cli, example: Path, pg_url: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write(example / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, database: \"${MLOPS_DB}\"}\n"
                                  "default_workspace: dev\n" + EXCLUDE)
    monkeypatch.setenv("MLOPS_DB", pg_url)
    assert cli("apply", str(example), "--auto-approve").code == 0
    ws = example / ".mlops" / "dev"
    files = stored(ws)
    monkeypatch.delenv("MLOPS_DB")
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 1 and "MLOPS_DB is not set" in res.err
    # the variable set, but to an empty database: the folder's files are not re-registered
    empty = pg_url + "_empty"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty.rsplit("/", 1)[1]}"')
    try:
        monkeypatch.setenv("MLOPS_DB", empty)
        res = cli("apply", str(example), "--auto-approve")
        assert res.code == 1 and "is empty or missing" in res.err and "of workspace" in res.err
        with psycopg.connect(empty) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'mg_%'").fetchone()
        assert tables == (0,), "nothing was written into the wrong database"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{empty.rsplit("/", 1)[1]}" WITH (FORCE)')
    assert stored(ws) == files
    monkeypatch.setenv("MLOPS_DB", pg_url)
    assert "Nothing to do" in cli("apply", str(example), "--auto-approve").out


def test_a_store_and_marker_from_before_the_rename_keep_their_id(cli: Cli, example: Path) -> None:
    # Earlier releases stored the workspace id under the key "lineage" (database and workspace.json).
    assert cli("apply", str(example), "--auto-approve").code == 0
    ws = example / ".mlops" / "dev"
    wid = LocalBackend(ws).read().workspace_id
    with sqlite3.connect(ws / "state.db") as conn:
        conn.execute("UPDATE mg_meta SET key = 'lineage' WHERE key = 'workspace_id'")
    marker = (ws / "workspace.json").read_text().replace('"workspace_id"', '"lineage"')
    (ws / "workspace.json").write_text(marker)
    assert LocalBackend(ws).read().workspace_id == wid
    write(example / "models" / "extra.yml", "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
                                             "name: extra\npath: azureml://registries/x/models/y/versions/1\n")
    res = cli("apply", str(example), "--auto-approve")
    assert res.code == 0, res.err
    with sqlite3.connect(ws / "state.db") as conn:
        assert dict(conn.execute("SELECT key, value FROM mg_meta WHERE key IN ('workspace_id', 'lineage')")) == {
            "lineage": wid, "workspace_id": wid}
