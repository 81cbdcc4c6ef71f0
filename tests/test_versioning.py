"""The one rule for "next version"."""

from __future__ import annotations

from mlops_gitops import versioning
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.state import ActualResource, Snapshot


def snap(*versions: tuple[str, str], counter: int = 0) -> Snapshot:
    s = Snapshot(None, 0)
    for i, (version, content) in enumerate(versions):
        addr = Address(Kind.MODEL, "churn", version)
        stamp = f"2026-01-01T00:{i:02d}:00+00:00"
        s.resources[addr] = ActualResource(
            address=addr, spec={}, derived={}, content_hash=content, spec_hash=content, applied_spec=None,
            applied_hash=None, status="active", managed=True, source_file=None, created_at=stamp, updated_at=stamp)
    if counter:
        s.counters[(Kind.MODEL, "churn")] = counter
    return s


def test_next_is_above_every_number_and_the_counter() -> None:
    assert versioning.next_version(Snapshot(None, 0), Kind.MODEL, "churn") == "1"
    assert versioning.next_version(snap(("2", "a"), ("10", "b"), ("v3", "c")), Kind.MODEL, "churn") == "11"
    # a deleted version's number is never given again
    assert versioning.next_version(snap(("2", "a"), counter=7), Kind.MODEL, "churn") == "8"
    assert versioning.next_version(snap(("2", "a")), Kind.MODEL, "churn", at_least=5) == "6"


def test_same_content_as_the_latest_is_that_version() -> None:
    s = snap(("1", "a"), ("2", "b"))
    assert versioning.auto_version(s, Kind.MODEL, "churn", "b") == "2"
    # content of an older version: a new version when numbering a spec, the old one for a run's files
    assert versioning.auto_version(s, Kind.MODEL, "churn", "a") == "3"
    assert versioning.auto_version(s, Kind.MODEL, "churn", "a", latest_only=False) == "1"
    assert versioning.auto_version(s, Kind.MODEL, "churn", "z") == "3"


def test_counter_moves_only_up_and_only_for_numbers() -> None:
    assert versioning.counter_after(None, "3") == 3
    assert versioning.counter_after(3, "2") is None
    assert versioning.counter_after(3, "4") == 4
    assert versioning.counter_after(3, "v9") is None
