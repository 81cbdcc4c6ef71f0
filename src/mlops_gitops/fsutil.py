"""Files and folders the workspace writes: joined safely, with modes that never depend on the umask.

Names from the tree (steps, outputs, inputs, jobs) become path components, so every such join goes
through `safe_join`, which refuses anything that would leave its parent. Modes are set explicitly after
creation: another thread (DVC does this) may set the process umask to 0 at any moment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

DIR_MODE = 0o700
PRIVATE_MODE = 0o600


class UnsafePathError(ValueError):
    """A name or relative path that would leave the folder it is joined to."""


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
