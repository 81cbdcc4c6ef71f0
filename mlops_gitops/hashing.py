"""Content hashes: canonical JSON for specs, sha256 for files and folders."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mlops_gitops.fsutil import UnsafePathError, open_regular, scan

CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def spec_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


# Fields of a versioned asset that may change without a new version (Azure ML semantics).
MUTABLE = frozenset({"description", "tags", "x-gitops", "stage"})


def versioned_content(spec: dict[str, Any], derived: dict[str, Any]) -> str:
    """What makes a version of a model, data asset, environment or component: never its mutable fields, except
    a conversion's declaration (x-gitops.convert), which is what the converted version's files come from."""
    content = {k: v for k, v in spec.items() if k not in MUTABLE and k != "version"}
    convert = (spec.get("x-gitops") or {}).get("convert")
    if convert is not None:
        content["x-gitops.convert"] = convert
    return spec_hash({"spec": content, "paths": derived.get("paths", {}), "refs": derived.get("refs", {})})


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a regular file (a device or FIFO is refused, never read)."""
    h = hashlib.sha256()
    size = 0
    with os.fdopen(open_regular(path), "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def file_sha256(path: Path) -> str:
    return file_digest(path)[0]


def path_manifest(path: Path, bound: Path | None = None,
                  bound_name: str = "the repository") -> list[tuple[str, str, int]]:
    """(relative posix path, sha256, size) for a file or every file under a folder. Links are followed
    while they stay inside `bound` (default: the path itself); anything else raises UnsafePathError."""
    files, problems = scan(path, bound or path)
    if problems:
        shown = "; ".join(p.describe(path.name, bound_name) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UnsafePathError(f"{path}: {shown}{more}")
    return sorted(((rel, *file_digest(real)) for rel, real in files), key=lambda entry: entry[0])


def content_summary(manifest: list[tuple[str, str, int]], is_dir: bool) -> dict[str, Any]:
    """What a resource records about a path's content: its hash, file count and size."""
    return {"sha256": manifest_hash(manifest, is_dir), "files": len(manifest),
            "bytes": sum(size for _, _, size in manifest)}


def manifest_hash(manifest: list[tuple[str, str, int]], is_dir: bool) -> str:
    """One hash for a file or folder; a folder's hash covers names and contents."""
    if not is_dir and len(manifest) == 1:
        return manifest[0][1]
    return spec_hash([[rel, digest] for rel, digest, _ in manifest])
