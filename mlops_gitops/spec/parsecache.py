"""Parsed YAML kept between runs, keyed by each file's content: a no-change plan of 1,000 files spent a third
of its time composing YAML it had composed the run before.

One file per tree in the user's cache folder (MLOPS_GITOPS_CACHE, else XDG_CACHE_HOME or ~/.cache), written
with `marshal` (plain data only: nothing in it can run code) and tagged with what could change its meaning —
the Python version and this package's parser source. Only documents that parsed without a diagnostic are
kept, and only those the last run used, so the file never grows past the tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import sys
from pathlib import Path
from typing import Any

from mlops_gitops.fsutil import ensure_dir, user_cache, write_private

Entry = tuple[Any, dict[tuple[str | int, ...], tuple[int, int]]]  # data, positions


def _stamp() -> str:
    """What the cached form depends on: the interpreter (marshal's format) and the parser's own source."""
    parser = Path(__file__).with_name("yamlload.py")
    try:
        st = parser.stat()
        source = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        source = "?"
    return f"{sys.version_info[0]}.{sys.version_info[1]}:{source}"


def key_of(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


class ParseCache:
    def __init__(self, root: Path) -> None:
        name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
        self.file = user_cache("parsed") / f"{name}.marshal"
        self.stamp = _stamp()
        # each entry marshalled on its own: a document handed out is a fresh copy, and one the tree later
        # changes (an inferred endpoint_name) is stored as it was parsed
        self.entries: dict[bytes, bytes] = {}
        self.used: dict[bytes, bytes] = {}
        self.added = False
        try:
            with open(self.file, "rb") as f:
                stored = marshal.load(f)
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == self.stamp and isinstance(stored[1], dict):
            self.entries = stored[1]

    def get(self, key: bytes) -> Entry | None:
        found = self.entries.get(key)
        if found is None:
            return None
        try:
            entry = marshal.loads(found)
        except (EOFError, ValueError, TypeError):
            return None
        self.used[key] = found
        return entry  # type: ignore[no-any-return]

    def put(self, key: bytes, entry: Entry) -> None:
        try:
            self.used[key] = marshal.dumps(entry)
        except ValueError:  # not plain data: left uncached
            return
        self.added = True

    def save(self) -> None:
        """Write what this run used, if that differs from what was read; a cache that cannot be written is none."""
        if not self.added and len(self.used) == len(self.entries):
            return
        with contextlib.suppress(OSError):
            write_private(ensure_dir(self.file.parent) / self.file.name, marshal.dumps((self.stamp, self.used)))
