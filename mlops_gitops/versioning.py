"""Which version an asset gets: the one rule for "next version" that plan, apply and runs share.

Azure numbers an asset without `version:` automatically; we do too, never reusing a number (not even
one whose version was archived or deleted: the workspace keeps a counter per name). An auto-numbered
asset whose content equals a version already there is that version, not a new one.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlops_gitops.addresses import Kind
from mlops_gitops.state import ActualResource, Snapshot


def number(version: str | None) -> int | None:
    """The integer a version counts as for numbering, or None for a named version ("v2", "2024-01")."""
    return int(version) if version is not None and version.isdigit() else None


def following(versions: Iterable[str | None], counter: int = 0, at_least: int = 0) -> str:
    """The number after every numbered version, the name's counter and `at_least`."""
    return str(max([counter, at_least, *(n for v in versions if (n := number(v)) is not None)]) + 1)


def next_version(snapshot: Snapshot, kind: Kind, name: str, at_least: int = 0) -> str:
    """A number not used by any version of the name, now or before (counter), nor below `at_least`."""
    return following((r.address.version for r in snapshot.versions(kind, name)),
                     snapshot.counters.get((kind, name), 0), at_least)


def same_content(snapshot: Snapshot, kind: Kind, name: str, content: str,
                 latest_only: bool = True) -> ActualResource | None:
    """The existing version with this content: the latest one only (a spec edited back to an older
    content is a new version, as Azure numbers it), or any (a run that reproduced older files)."""
    if latest_only:
        latest = snapshot.latest(kind, name, include_archived=True)
        return latest if latest is not None and latest.content_hash == content else None
    same = [r for r in snapshot.versions(kind, name) if r.content_hash == content]
    return same[-1] if same else None


def auto_version(snapshot: Snapshot, kind: Kind, name: str, content: str, at_least: int = 0,
                 latest_only: bool = True) -> str:
    """The version of an auto-numbered asset with this content."""
    existing = same_content(snapshot, kind, name, content, latest_only)
    if existing is not None:
        return existing.address.version or "1"
    return next_version(snapshot, kind, name, at_least)


def counter_after(current: int | None, written: str | None) -> int | None:
    """The name's counter once `written` is recorded; None when it does not change."""
    n = number(written)
    if n is None or (current is not None and n <= current):
        return None
    return n
