"""Content-addressed file store: artifacts/sha256/ab/cdef… written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import ensure_dir


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "artifacts" / "sha256"

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, source: Path, sha256: str) -> Path:
        """Copy source in under its hash; verify the hash so a file changed since plan is caught."""
        dest = self.path(sha256)
        if dest.is_file():
            return dest
        ensure_dir(dest.parent)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            h = hashlib.sha256()
            with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != sha256:
                raise WorkspaceError(f"{source} changed since it was planned (content hash differs); plan again")
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def export(self, sha256: str, dest: Path) -> None:
        src = self.path(sha256)
        if not src.is_file():
            raise WorkspaceError(f"artifact {sha256[:12]} is missing from {self.root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    def all(self) -> Iterable[str]:
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.is_dir():
                for f in sub.iterdir():
                    if not f.name.startswith(".tmp-"):
                        yield sub.name + f.name

    def remove(self, digests: set[str]) -> set[str]:
        """Delete these stored files; the digests whose files are gone now."""
        for digest in digests:
            self.path(digest).unlink(missing_ok=True)
        return digests

    def remove_interrupted_copies(self) -> int:
        removed = 0
        if self.root.is_dir():
            for tmp in self.root.glob("*/.tmp-*"):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed
