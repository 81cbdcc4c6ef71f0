"""Files and folders the workspace writes: joined safely, with modes that never depend on the umask.

Names from the tree (steps, outputs, inputs, jobs) become path components, so every such join goes
through `safe_join`, which refuses anything that would leave its parent. Modes are set explicitly after
creation: another thread (DVC does this) may set the process umask to 0 at any moment.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

DIR_MODE = 0o700
PRIVATE_MODE = 0o600


class UnsafePathError(ValueError):
    """A name or relative path that would leave the folder it is joined to."""


class NotRegularFileError(UnsafePathError):
    """A device, FIFO or socket where a file is read: refused unread (reading /dev/zero never ends)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is a {kind}, not a regular file")
        self.kind = kind


def check_relative(part: str, what: str = "path") -> PurePosixPath:
    """A relative path made of plain components (no '..', no absolute path, no NUL or backslash)."""
    if not isinstance(part, str) or not part or "\x00" in part or "\\" in part:
        raise UnsafePathError(f"{what} {part!r} is not a plain relative path")
    pure = PurePosixPath(part)
    if pure.is_absolute() or any(p in ("..", ".") for p in part.split("/")) or not pure.parts:
        raise UnsafePathError(f"{what} {part!r} would leave its folder")
    return pure


def safe_join(parent: Path, *parts: str, what: str = "name") -> Path:
    """parent / parts, refusing any part that is absolute, holds '..', or would resolve outside parent."""
    out = parent
    for part in parts:
        out = out / check_relative(part, what)
    try:
        out.resolve().relative_to(parent.resolve())
    except ValueError:  # a link on the way points elsewhere
        raise UnsafePathError(f"{what} {'/'.join(parts)!r} resolves outside {parent}") from None
    return out


def ensure_dir(path: Path, mode: int = DIR_MODE) -> Path:
    """Create path and its missing parents with exactly `mode` (explicit chmod: the umask may be 0 now)."""
    missing: list[Path] = []
    cur = path
    while not cur.exists():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            continue  # made meanwhile by another thread or process
        os.chmod(folder, mode)
    return path


def open_private(path: Path, append: bool = True) -> int:
    """A file descriptor for writing, the file created 0600 whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)
    return fd


def open_lock(path: Path) -> IO[str]:
    """A lock file (for flock) that nobody else may write, whatever the umask."""
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE), "a+")


def copy_private(source: Path, dest: Path) -> None:
    """Copy a file so that the copy is 0600 from its first byte (hard links share the stored file's 0600)."""
    with open(source, "rb") as src, os.fdopen(open_private(dest, append=False), "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)


def user_cache(*parts: str) -> Path:
    """A folder of the user's cache: MLOPS_GITOPS_CACHE, else XDG_CACHE_HOME or ~/.cache, then mlops-gitops/…"""
    base = os.environ.get("MLOPS_GITOPS_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "mlops-gitops", *parts)


def write_private(path: Path, data: str | bytes, mode: int = PRIVATE_MODE) -> None:
    """Replace path atomically with data, mode 0600 (never readable by others, even for a moment)."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def restrict(path: Path, mode: int = PRIVATE_MODE) -> None:
    """Tighten an existing file's mode (a store file created by a library with the default umask)."""
    try:
        if path.exists() and (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except OSError:
        pass  # not ours to change (another owner): reading it still works


# -- walking a path of the tree: links and special files ------------------------------------------------


@dataclass(frozen=True)
class PathProblem:
    """Something under a path that cannot be stored: a link out of bounds or that leads nowhere, a device."""

    rel: str  # relative to the path scanned ('' for the path itself)
    kind: str  # outside | dangling | loop | special
    detail: str

    @property
    def code(self) -> str:
        """The diagnostic code validate reports it with."""
        return {"outside": "PATH001", "special": "PATH003"}.get(self.kind, "PATH002")

    def describe(self, shown: str, bound: str = "the repository") -> str:
        where = f"'{shown}/{self.rel}'" if self.rel else f"'{shown}'"
        return {"outside": f"{where} is a link to {self.detail}, outside {bound}",
                "dangling": f"{where} is a link to {self.detail}, which does not exist",
                "loop": f"{where} is a link back into a folder that contains it ({self.detail})",
                "special": f"{where} is a {self.detail}, not a regular file"}[self.kind]


def _special(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


class _Scanner:
    def __init__(self, bound: Path) -> None:
        self.bound = bound.resolve()
        self.files: list[tuple[str, Path]] = []
        self.problems: list[PathProblem] = []

    def refuse(self, rel: str, kind: str, p: Path) -> None:
        self.problems.append(PathProblem(rel, kind, os.readlink(p) if p.is_symlink() else str(p)))

    def classify(self, p: Path, rel: str) -> tuple[str, Path] | None:
        try:
            real = p.resolve(strict=True)
        except FileNotFoundError:
            self.refuse(rel, "dangling", p)
            return None
        except (RuntimeError, OSError):  # a link loop (ELOOP) or an unreadable link
            self.refuse(rel, "loop", p)
            return None
        if not real.is_relative_to(self.bound):
            self.problems.append(PathProblem(rel, "outside", str(real)))
            return None
        mode = real.stat().st_mode
        if stat.S_ISDIR(mode):
            return "dir", real
        if stat.S_ISREG(mode):
            return "file", real
        self.problems.append(PathProblem(rel, "special", _special(mode)))
        return None

    def walk(self, folder: Path, real: Path, prefix: str, ancestors: frozenset[Path]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self.problems.append(PathProblem(prefix.rstrip("/"), "special",
                                             f"folder that cannot be read ({exc.strerror})"))
            return
        for entry in entries:
            rel = prefix + entry.name
            found = self.classify(Path(entry.path), rel)
            if found is None:
                continue
            kind, target = found
            if kind == "file":
                self.files.append((rel, target))
            elif target in ancestors or target == real:
                self.refuse(rel, "loop", Path(entry.path))
            else:
                self.walk(Path(entry.path), target, rel + "/", ancestors | {real})


def scan(path: Path, bound: Path) -> tuple[list[tuple[str, Path]], list[PathProblem]]:
    """The regular files under path (or path itself) as (relative posix path, real path), following links
    that stay inside `bound` once each and never into a folder that contains them; and what was refused."""
    scanner = _Scanner(bound)
    top = scanner.classify(path, "")
    if top is not None and top[0] == "file":
        scanner.files.append((path.name, top[1]))
    elif top is not None:
        scanner.walk(path, top[1], "", frozenset())
    return scanner.files, scanner.problems


def open_regular(path: Path) -> int:
    """A read descriptor for a regular file; never blocks on a FIFO or reads a device (O_NONBLOCK, fstat)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFileError(path, _special(mode))
    os.set_blocking(fd, True)
    return fd


def read_limited(path: Path, limit: int) -> bytes:
    """A regular file's bytes; a device, FIFO or socket is refused unread, a file over `limit` bytes at once."""
    with os.fdopen(open_regular(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        raw = b""
        if size <= limit:
            raw = f.read(size + 1)  # one more byte: a file that grew since fstat is read on, up to the limit
            if len(raw) > size:
                raw += f.read(limit + 1 - len(raw))
    if size > limit or len(raw) > limit:
        raise FileTooLargeError(f"the file is {max(size, len(raw)):,} bytes; the limit is {limit:,} bytes")
    return raw


class FileTooLargeError(ValueError):
    pass
