"""Content hashes: canonical JSON for specs, sha256 for files and folders."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def spec_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


# Fields of a versioned asset that may change without a new version (Azure ML semantics).
MUTABLE = frozenset({"description", "tags", "x-gitops", "stage"})


def versioned_content(spec: dict[str, Any], derived: dict[str, Any]) -> str:
    """What makes a version of a model, data asset, environment or component: never its mutable fields."""
    return spec_hash({"spec": {k: v for k, v in spec.items() if k not in MUTABLE and k != "version"},
                      "paths": derived.get("paths", {}), "refs": derived.get("refs", {})})


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def list_files(root: Path) -> list[Path]:
    """Files under a folder, sorted, as paths relative to it (symlinked dirs are not followed)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            out.append((base / name).relative_to(root))
    return sorted(out, key=lambda p: p.as_posix())


def path_manifest(path: Path) -> list[tuple[str, str, int]]:
    """(relative posix path, sha256, size) for a file or every file under a folder."""
    if path.is_file():
        return [(path.name, file_sha256(path), path.stat().st_size)]
    return [
        (rel.as_posix(), file_sha256(path / rel), (path / rel).stat().st_size) for rel in list_files(path)
    ]


def content_summary(manifest: list[tuple[str, str, int]], is_dir: bool) -> dict[str, Any]:
    """What a resource records about a path's content: its hash, file count and size."""
    return {"sha256": manifest_hash(manifest, is_dir), "files": len(manifest),
            "bytes": sum(size for _, _, size in manifest)}


def manifest_hash(manifest: list[tuple[str, str, int]], is_dir: bool) -> str:
    """One hash for a file or folder; a folder's hash covers names and contents."""
    if not is_dir and len(manifest) == 1:
        return manifest[0][1]
    return spec_hash([[rel, digest] for rel, digest, _ in manifest])
