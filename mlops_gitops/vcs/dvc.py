"""DVC facts: whether a path is tracked, its hash as Git records it, and fetching its data.

A data asset or model whose path is DVC-tracked is versioned by DVC's hash (from the `.dvc` file or
dvc.lock, read through DVC's own API), so its version is known without the data being present; the
data is fetched from the repository's DVC remote only when apply stores it.

Importing and asking DVC costs ~0.4 s, which `validate` on every save cannot afford; its answers are kept
in `.dvc/tmp/mlops-gitops-hashes.json` (DVC's own ignored folder), keyed by the content of every record
that can name the path (`.dvc` files, dvc.yaml, dvc.lock) and, for the check of the working-tree file
against it, by the file's size and modification time, as Git's index does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_gitops import progress
from mlops_gitops.fsutil import ensure_dir, open_lock, write_private

CACHE_FILE = "mlops-gitops-hashes.json"
_CACHE_ENTRIES = 2000  # the newest answers kept; older ones are dropped when the file is written
_RACY_S = 2.0  # a file modified this recently may change again within the same mtime tick: not cached


class DvcError(Exception):
    pass


@dataclass(frozen=True)
class Tracked:
    repo_root: Path  # the DVC repository (the folder holding .dvc/)
    rel: str  # the path inside it
    md5: str  # DVC's hash; folders end in .dir
    size: int | None
    nfiles: int | None

    @property
    def isdir(self) -> bool:
        return self.md5.endswith(".dir")


def dvc_root(path: Path) -> Path | None:
    for folder in [path, *path.parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def might_be_tracked(path: Path) -> bool:
    """Cheap test before DVC is imported: a .dvc file beside the path (or a parent) or a dvc.lock."""
    root = dvc_root(path.parent)
    if root is None:
        return False
    for candidate in [path, *path.parents]:
        if Path(f"{candidate}.dvc").is_file():
            return True
        if candidate == root:
            break
    return (root / "dvc.lock").is_file()


def tracked(path: Path) -> Tracked | None:
    """DVC's record of `path`, or None when DVC does not track it."""
    if not might_be_tracked(path):
        return None
    root = dvc_root(path.parent)
    assert root is not None
    rel = path.relative_to(root).as_posix()
    cache = _Cache(root)
    key = "record:" + _records_key(root, path, rel)
    if key in cache.entries:
        hit = cache.entries[key]
        return Tracked(root, rel, hit["md5"], hit["size"], hit["nfiles"]) if hit else None
    found = _ask_dvc(root, rel)
    cache.put(key, None if found is None else {"md5": found.md5, "size": found.size, "nfiles": found.nfiles})
    return found


def _ask_dvc(root: Path, rel: str) -> Tracked | None:
    try:
        from dvc.api import DVCFileSystem
    except ImportError:
        raise DvcError(f"{rel} is tracked by DVC, and reading DVC files needs dvc: pip install dvc") from None
    fs = DVCFileSystem(str(root))
    try:
        info = fs.info(f"/{rel}")  # rooted: DVC reads a relative path against the cwd when it is inside the repo
    except FileNotFoundError:
        return None
    except Exception as exc:  # a broken .dvc file, a bad config: DVC's own message
        raise DvcError(f"DVC cannot read the record of {rel}: {exc}") from None
    finally:
        fs.close()
    dvc_info = info.get("dvc_info") or {}
    md5 = dvc_info.get("md5")
    if not md5:
        return None
    entry = dvc_info.get("entry")
    nfiles = getattr(getattr(entry, "meta", None), "nfiles", None)
    return Tracked(root, rel, str(md5), dvc_info.get("size"), nfiles)


def matches(t: Tracked, path: Path) -> bool:
    """Whether the file in the working tree is what DVC recorded (DVC 3 hashes a file's raw bytes)."""
    if t.isdir or not path.is_file():
        return True  # folders: DVC checks them itself when it is asked to
    st = path.stat()
    cache = _Cache(t.repo_root)
    key = f"file:{t.rel}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    if cache.entries.get(key, {}).get("md5") == t.md5:
        return True
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if time.time() - st.st_mtime > _RACY_S:
        cache.put(key, {"md5": h.hexdigest()})
    return h.hexdigest() == t.md5


def _records_key(root: Path, path: Path, rel: str) -> str:
    """A hash of everything DVC reads to answer for `rel`: the records that can name it, as they are now."""
    h = hashlib.sha256(rel.encode())
    records = [Path(f"{c}.dvc") for c in [path, *path.parents] if c.is_relative_to(root) and c != root]
    for record in [*records, root / "dvc.yaml", root / "dvc.lock"]:
        h.update(b"\0" + record.relative_to(root).as_posix().encode() + b"\0")
        with contextlib.suppress(OSError):
            h.update(hashlib.sha256(record.read_bytes()).digest())
    return h.hexdigest()


class _Cache:
    """DVC's answers in the DVC repository's ignored tmp folder; unreadable or unwritable means uncached."""

    def __init__(self, root: Path) -> None:
        self.file = root / ".dvc" / "tmp" / CACHE_FILE
        self.entries: dict[str, Any] = {}
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and isinstance(data.get("entries"), dict):
            self.entries = data["entries"]

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        self.entries.pop(key, None)
        self.entries[key] = value  # insertion order is age: the newest last
        keep = dict(list(self.entries.items())[-_CACHE_ENTRIES:])
        with contextlib.suppress(OSError):  # readers see the old file or the new one, never half of one
            write_private(ensure_dir(self.file.parent) / self.file.name, json.dumps({"entries": keep}))


def fetch(t: Tracked) -> None:
    """Bring the tracked data into the working tree from the cache or the DVC remote (`dvc pull`)."""
    # DVC logs through handlers of its own (bound to the stderr of the time); our error says what failed.
    loggers = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    saved = [(lg.level, lg.propagate, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
        lg.propagate, lg.disabled = False, True
    try:  # one pull at a time per repository: two applies checking out the same files race otherwise
        with open_lock(ensure_dir(t.repo_root / ".dvc" / "tmp") / "mlops-gitops-fetch.lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (t.repo_root / t.rel).exists():  # another process may have fetched it while this one waited
                with progress.task(f"fetching {t.rel} from DVC's cache or remote"):
                    _pull(t)
    finally:
        for lg, (level, propagate, disabled) in zip(loggers, saved, strict=True):
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
    if not (t.repo_root / t.rel).exists():
        raise DvcError(f"DVC reported no error but {t.rel} is still missing")


def _pull(t: Tracked) -> None:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    in_git = any((folder / ".git").exists() for folder in [t.repo_root, *t.repo_root.parents])
    config = None if in_git else {"core": {"no_scm": True}}  # a copied tree without Git still pulls
    try:
        with Repo(str(t.repo_root), config=config) as repo:
            repo.pull(targets=[str(t.repo_root / t.rel)])  # relative targets resolve against the cwd
    except DvcException as exc:
        raise DvcError(f"DVC could not fetch {t.rel} (md5 {t.md5}) from the cache or any remote: "
                       f"{str(exc).strip().splitlines()[0]}") from None
