"""The contract every backend passes, driven through the Backend protocol only.

Each entry of BACKENDS builds a backend with an empty workspace; a new backend (Azure ML, Kubernetes) adds
its factory there and must pass every test below unchanged: create, update, archive and delete of every
kind, versions, the change log, lock contention, journal recovery, out-of-band changes (drift), events and
stored files."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.base import Backend
from mlops_gitops.errors import LockHeldError, NotFoundError
from mlops_gitops.hashing import spec_hash
from mlops_gitops.kinds import VERSIONED
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.state import DesiredResource
from tests.helpers import AZ, every_kind_tree, write

Factory = Callable[[Path, str], Backend]  # (a fresh folder, a fresh PostgreSQL URL) -> a backend


def _local_sqlite(folder: Path, _: str) -> Backend:
    from mlops_gitops.backends.local import LocalBackend

    return LocalBackend(folder / "ws")


def _local_postgres(folder: Path, pg_url: str) -> Backend:
    from mlops_gitops.backends.local import LocalBackend

    return LocalBackend(folder / "ws", pg_url)


BACKENDS: dict[str, Factory] = {"local-sqlite": _local_sqlite, "local-postgresql": _local_postgres}
PROVENANCE = {"git.commit": "0" * 40, "applied_by": "tester"}


@pytest.fixture(params=[pytest.param(name, marks=[pytest.mark.postgres] if "postgres" in name else [])
                        for name in BACKENDS])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Backend]]:
    """Backends on one fresh workspace (call it again for a second client of the same workspace)."""
    pg_url = request.getfixturevalue("pg_url") if "postgres" in request.param else ""
    opened: list[Backend] = []

    def new() -> Backend:
        opened.append(BACKENDS[request.param](tmp_path, pg_url))
        return opened[-1]

    yield new
    for backend in opened:
        backend.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return every_kind_tree(tmp_path / "tree")


def desired_of(root: Path, backend: Backend) -> list[DesiredResource]:
    resources = build_desired(load_tree(root), backend.read()).resources
    return [resources[a] for a in sorted(resources, key=Address.sort_key)]


def apply_all(backend: Backend, root: Path, apply_id: str = "apply-1") -> list[DesiredResource]:
    backend.ensure()
    wanted = desired_of(root, backend)
    backend.begin_apply(apply_id, "tester", {"commit": "0" * 40})
    for d in wanted:
        backend.put(d, "create", PROVENANCE, apply_id, journal_begin=True)
    backend.finish_apply(apply_id, "succeeded", {"created": len(wanted)})
    return wanted


def test_every_kind_is_created_and_read_back_as_written(make: Callable[[], Backend], tree: Path) -> None:
    backend = make()
    assert not backend.has_state() and backend.read().resources == {}
    wanted = apply_all(backend, tree)
    assert {d.address.kind for d in wanted} == set(Kind), "the tree has every kind"
    snap = backend.read()
    assert set(snap.resources) == {d.address for d in wanted}
    for d in wanted:
        got = backend.get(d.address)
        assert got is not None and got == snap.resources[d.address]
        assert (got.spec, got.spec_hash, got.content_hash) == (d.spec, d.spec_hash, d.content_hash)
        assert got.status == "active" and got.managed and got.source_file == d.source_file
        assert got.applied_hash == d.spec_hash, "written from Git: the applied spec is the spec"
        assert {f.sha256 for f in got.files} == {a.sha256 for a in d.artifacts}
    assert snap.serial >= len(wanted)
    assert backend.interrupted() == [], "a finished apply leaves nothing to recover"
    # a second client of the same workspace sees the same state
    assert make().read().resources == snap.resources


def test_changes_to_every_kind_are_logged(make: Callable[[], Backend], tree: Path) -> None:
    backend = make()
    wanted = apply_all(backend, tree)
    serial = backend.read().serial
    for d in wanted:
        if d.address.kind in VERSIONED:
            backend.set_status(d.address, "archived", PROVENANCE, "apply-2", "apply")
        else:
            spec = {**d.spec, "description": "changed"}
            backend.put(replace(d, spec=spec, spec_hash=spec_hash(spec)), "update", PROVENANCE,
                        "apply-2")
    snap = backend.read()
    assert snap.serial > serial
    for d in wanted:
        got = snap.resources[d.address]
        if d.address.kind in VERSIONED:
            assert got.status == "archived"
            assert snap.latest(d.address.kind, d.address.name) is None
            assert snap.latest(d.address.kind, d.address.name, include_archived=True) == got
        else:
            assert got.spec["description"] == "changed" and got.spec_hash != d.spec_hash
        log = backend.change_log(d.address)
        assert log[0].action == "create" and len(log) == 2, log
        assert log[-1].apply_id == "apply-2" and log[-1].provenance.get("git.commit") == "0" * 40
    for d in reversed(wanted):
        if d.address.kind not in VERSIONED:
            backend.delete(d.address, PROVENANCE, "apply-3", "apply")
            assert backend.get(d.address) is None
            assert backend.change_log(d.address)[-1].action == "delete"
    assert {a.kind for a in backend.read().resources} <= VERSIONED


def test_versions_of_an_asset_live_side_by_side(make: Callable[[], Backend], tree: Path) -> None:
    backend = make()
    apply_all(backend, tree)
    (tree / "f.bin").write_bytes(b"retrained weights")
    write(tree / "model.yml", f"$schema: {AZ}/model.schema.json\nname: m\npath: ./f.bin\n")
    second = next(d for d in desired_of(tree, backend) if d.address.kind is Kind.MODEL)
    assert second.address == Address(Kind.MODEL, "m", "2"), "the next version is decided from the workspace"
    backend.put(second, "create", PROVENANCE, None)
    snap = backend.read()
    versions = snap.versions(Kind.MODEL, "m")
    assert [v.address.version for v in versions] == ["1", "2"]
    assert versions[0].files != versions[1].files
    latest = snap.latest(Kind.MODEL, "m")
    assert latest is not None and latest.address.version == "2"
    with backend.lock("apply"):
        backend.collect_garbage()  # every stored file is referenced: nothing goes
    reader = make()  # another client reads both versions' files
    assert (reader.export_files(latest, tree / "out") / "f.bin").read_bytes() == b"retrained weights"
    assert (reader.export_files(versions[0], tree / "out") / "f.bin").read_bytes() == b"weights"


def test_the_lock_is_exclusive_across_clients(make: Callable[[], Backend], tree: Path) -> None:
    first, second = make(), make()
    apply_all(first, tree)
    with first.lock("apply", "a test holds it"):
        holder = second.lock_holder()
        assert holder is not None and holder.operation == "apply" and holder.reason == "a test holds it"
        with pytest.raises(LockHeldError), second.lock("apply"):
            pass
        with pytest.raises(NotFoundError):
            second.force_unlock("not-the-lock-id")
    assert second.lock_holder() is None

    # a waiting client gets the lock once the holder lets go
    release = threading.Event()
    got: list[str] = []

    def hold() -> None:
        with first.lock("apply", "held until released"):
            got.append("first")
            release.wait(30)

    holder_thread = threading.Thread(target=hold)
    holder_thread.start()
    while not got:
        threading.Event().wait(0.01)
    threading.Timer(0.2, release.set).start()
    with second.lock("apply", "waits", timeout=30) as info:
        got.append("second")
        assert info.operation == "apply"
    holder_thread.join(30)
    assert got == ["first", "second"]


def test_an_interrupted_apply_is_found_and_can_be_abandoned(make: Callable[[], Backend], tree: Path) -> None:
    backend = make()
    wanted = apply_all(backend, tree)
    target = next(d for d in wanted if d.address.kind is Kind.ONLINE_ENDPOINT)
    backend.begin_apply("apply-crashed", "tester", {})
    backend.journal("apply-crashed", target.address, "update", "begin")
    # the process dies here: no end, no finish
    found = make().interrupted()
    assert [(f["id"], f["open"]) for f in found] == [("apply-crashed", {str(target.address): "update"})]
    backend.mark_abandoned("apply-crashed")
    assert make().interrupted() == []


def test_an_out_of_band_change_is_drift(make: Callable[[], Backend], tree: Path) -> None:
    backend = make()
    wanted = apply_all(backend, tree)
    traffic = next(d for d in wanted if d.address.kind is Kind.TRAFFIC)
    spec: dict[str, Any] = {**traffic.spec, "traffic": {"dep": 0}}
    backend.set_spec(traffic.address, spec, spec_hash(spec), {"applied_by": "someone"})
    got = backend.get(traffic.address)
    assert got is not None and got.spec == spec
    assert got.spec_hash != got.applied_hash and got.applied_hash == traffic.spec_hash
    assert backend.change_log(traffic.address)[-1].origin == "cli"
    with pytest.raises(NotFoundError):
        backend.set_spec(Address(Kind.TRAFFIC, "nowhere"), spec, "x", {})


def test_events_are_kept_in_order(make: Callable[[], Backend]) -> None:
    backend = make()
    backend.ensure()
    for i in range(3):
        backend.emit("test.happened", f"thing:{i}", {"i": i})
    events = make().events()
    assert [e.subject for e in events][-3:] == ["thing:0", "thing:1", "thing:2"]
    assert [e.subject for e in backend.events(after=events[-2].seq)] == ["thing:2"]
    assert [e.subject for e in backend.events(limit=1)] == ["thing:2"]
