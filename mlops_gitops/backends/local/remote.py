"""An effect: remote inputs of steps downloaded once into the content-addressed store.

Each object (an https file, a datastore blob) is stored by its SHA-256 and remembered with its ETag
(or Last-Modified); a later run asks the source whether it changed and reuses the stored copy when
not, so unchanged remote inputs also keep steps reusable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mlops_gitops import progress
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.runtime import remote
from mlops_gitops.runtime.pipelines.steps import FileEntry
from mlops_gitops.runtime.remote import Datastore, RemoteError, RemoteObject


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class RemoteInputs:
    def __init__(self, store: LocalStore, datastores: dict[str, Datastore], hooks: Hooks) -> None:
        self.store = store
        self.datastores = datastores
        self.hooks = hooks

    def files(self, url: str, type_: str) -> tuple[FileEntry, ...]:
        """The files of a remote input, from the store (fetched first where they changed or are new)."""
        scheme = url.split("://", 1)[0].lower()
        if scheme in ("http", "https"):
            if type_ == "uri_folder":
                raise RemoteError(f"{remote.shown(url)}: a web URL is one file, so the input's type must be "
                                  "uri_file (folders come from datastores)")
            name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "download"
            return (self._http(url, name),)
        where = remote.blob_path(url, self.datastores)
        fs = remote.blob_filesystem(where.store)
        objects = remote.blob_objects(fs, where, folder=type_ != "uri_file")
        return tuple(self._blob(fs, obj, where) for obj in objects)

    def _http(self, url: str, name: str) -> FileEntry:
        key = _key(url)
        cached = self.store.remote_object(key)
        etag = cached[0] if cached else ""
        with progress.task(f"downloading {name}"):
            tmp, digest, size, (downloaded, validator) = remote.download_hashed(
                lambda dest: remote.http_fetch(url, etag, dest), self.store.path / "tmp")
        if not downloaded and cached is not None:
            tmp.unlink(missing_ok=True)
            self.hooks.note(f"  {remote.shown(url)}: unchanged (stored copy)")
            return FileEntry(name, cached[1], cached[2], self.store.artifact_path(cached[1]))
        return self._keep(key, remote.shown(url), validator, name, tmp, digest, size)

    def _blob(self, fs: Any, obj: RemoteObject, where: remote.BlobPath) -> FileEntry:
        key = _key(obj.key)
        cached = self.store.remote_object(key)
        if cached is not None and obj.etag and cached[0] == obj.etag:
            return FileEntry(obj.rel, cached[1], cached[2], self.store.artifact_path(cached[1]))
        with progress.task(f"downloading {obj.rel} from datastore {where.store.name}"):
            tmp, digest, size, _ = remote.download_hashed(lambda dest: remote.blob_fetch(fs, obj, where, dest),
                                                          self.store.path / "tmp")
        return self._keep(key, f"datastore {where.store.name}: {obj.key.split(':', 1)[1]}", obj.etag, obj.rel, tmp,
                          digest, size)

    def _keep(self, key: str, shown: str, validator: str, rel: str, tmp: Path, digest: str, size: int) -> FileEntry:
        try:
            self.store.record_blobs([digest])
            self.store.artifacts.put(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        self.store.remember_remote_object(key, shown, validator, digest, size)
        self.hooks.note(f"  downloaded {shown} ({size} B)")
        return FileEntry(rel, digest, size, self.store.artifact_path(digest))
