"""Content-addressed file stores: `sha256/ab/cdef…`, in the workspace folder or in object storage.

`FolderArtifacts` keeps the files under `<workspace>/artifacts/`. `ObjectArtifacts` keeps them in Azure
Blob (`az://container/prefix`, adlfs) or S3 (`s3://bucket/prefix`, s3fs) through fsspec, credentials from
the environment as each library reads them, with a local read cache: serving and runs need real files,
and a file is downloaded once per machine, verified against its hash. Both write a file only when its
name is not there yet (the name is the hash), and only after its content was verified, so a reader
never sees a partial file: the folder renames a finished copy into place, an object store's upload is
atomic per object.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import ensure_dir, write_private

MARKER = "workspace.json"
_SCHEMES = {"az": "adlfs", "abfs": "adlfs", "abfss": "adlfs", "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs",
            "gcs": "gcsfs", "memory": None}


def _copy_verified(source: Path, dest: Path, sha256: str) -> None:
    """Copy source to dest through a temporary file beside it, refusing content other than sha256."""
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


def _tmp_files(root: Path) -> int:
    removed = 0
    if root.is_dir():
        for tmp in root.glob("*/.tmp-*"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


class FolderArtifacts:
    """Files in the workspace folder."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.root = workspace / "artifacts" / "sha256"
        self.location = str(workspace)  # the marker beside artifacts/: move the whole folder, not one part

    def check(self) -> None:
        """Nothing to reach: the folder is created with the workspace."""

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, source: Path, sha256: str) -> None:
        """Copy source in under its hash; verify the hash so a file changed since plan is caught."""
        if not self.path(sha256).is_file():
            _copy_verified(source, self.path(sha256), sha256)

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

    def count(self, limit: int = 1000) -> int:
        n = 0
        for _ in self.all():
            n += 1
            if n >= limit:
                break
        return n

    def remove(self, digests: set[str]) -> set[str]:
        """Delete these stored files; the digests whose files are gone now."""
        for digest in digests:
            self.path(digest).unlink(missing_ok=True)
        return digests

    def remove_interrupted_copies(self) -> int:
        return _tmp_files(self.root)

    def read_marker(self) -> str | None:
        path = self.workspace / MARKER
        return path.read_text(encoding="utf-8") if path.exists() else None

    def write_marker(self, text: str) -> None:
        write_private(self.workspace / MARKER, text)

    @property
    def marker_location(self) -> str:
        return str(self.workspace / MARKER)


class ObjectArtifacts:
    """Files in an object store, read through a local cache."""

    def __init__(self, url: str, cache: Path, setting: str = "artifacts") -> None:
        self.url = url.rstrip("/")
        self.location = self.url
        # "mlops.yaml:LINE:COL: artifacts", the setting that every message about the store names
        self.setting = setting if setting.endswith("artifacts") else f"{setting}: artifacts"
        self.cache = cache / "sha256"
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise WorkspaceError(f"{self.setting}: '{url}' is not an object store URL: use az://container/prefix "
                                 "(Azure Blob) or s3://bucket/prefix (S3); leave `artifacts` out to keep the files "
                                 "in the workspace folder")
        try:
            import fsspec

            self.fs: Any
            self.fs, self.prefix = fsspec.core.url_to_fs(self.url, skip_instance_cache=True,
                                                         **({"use_listings_cache": False} if scheme != "memory"
                                                            else {}))
        except ImportError as exc:
            extra = "azure" if _SCHEMES[scheme] == "adlfs" else "s3" if _SCHEMES[scheme] == "s3fs" else None
            hint = f"pip install 'mlops-gitops[{extra}]'" if extra else f"pip install {_SCHEMES[scheme]}"
            raise WorkspaceError(f"{self.setting}: {url} needs {exc.name or _SCHEMES[scheme]} ({hint})") from None
        except (ValueError, TypeError) as exc:
            raise WorkspaceError(f"{self.setting}: cannot use artifact store {url}: {exc}") from None
        self.prefix = self.prefix.rstrip("/")
        self._checked = False

    @contextlib.contextmanager
    def _reaching(self, what: str) -> Iterator[None]:
        """Any failure of the store (unreachable, credentials, a missing bucket) as one clear error."""
        try:
            yield
        except WorkspaceError:
            raise
        except FileNotFoundError as exc:
            raise WorkspaceError(f"{self.setting}: {what} in {self.url}: not found ({_reason(exc)}); does the "
                                 "container or bucket exist?") from None
        except Exception as exc:
            raise WorkspaceError(f"{self.setting}: cannot {what} in {self.url}: {_reason(exc)}") from None

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}/sha256/{sha256[:2]}/{sha256[2:]}"

    def check(self) -> None:
        """Reach the store once before the first change, so a wrong URL or credential changes nothing."""
        if self._checked:
            return
        bucket = self.prefix.split("/", 1)[0]
        with self._reaching("reach the container or bucket"):
            try:
                self.fs.ls(bucket, detail=False)  # raises for a wrong credential or endpoint, not only absence
            except FileNotFoundError:
                raise WorkspaceError(f"{self.setting}: the container or bucket '{bucket}' of {self.url} does not "
                                     "exist (create it first)") from None
        self._checked = True

    def path(self, sha256: str) -> Path:
        """A local copy of the stored file, downloaded and verified on first use on this machine."""
        local = self.cache / sha256[:2] / sha256[2:]
        if local.is_file():
            return local
        ensure_dir(local.parent)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".tmp-")
        os.close(fd)
        try:
            with self._reaching(f"read artifact {sha256[:12]}"):
                try:
                    self.fs.get_file(self._key(sha256), tmp)
                except FileNotFoundError:
                    raise WorkspaceError(f"artifact {sha256[:12]} is missing from {self.url}") from None
            with open(tmp, "rb") as fh:
                if hashlib.file_digest(fh, "sha256").hexdigest() != sha256:
                    raise WorkspaceError(f"artifact {sha256[:12]} in {self.url} does not hold the content its "
                                         "name says (damaged in the store)")
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return local

    def has(self, sha256: str) -> bool:
        with self._reaching(f"look up artifact {sha256[:12]}"):
            return bool(self.fs.exists(self._key(sha256)))

    def put(self, source: Path, sha256: str) -> None:
        """Upload once: a name already there holds this content (the name is its hash)."""
        self.check()
        local = self.cache / sha256[:2] / sha256[2:]
        if not local.is_file():
            _copy_verified(source, local, sha256)  # verified before upload, and cached for later reads
        if self.has(sha256):
            return
        with self._reaching(f"upload artifact {sha256[:12]}"):
            self.fs.put_file(str(local), self._key(sha256))

    def export(self, sha256: str, dest: Path) -> None:
        src = self.path(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    def all(self) -> Iterable[str]:
        with self._reaching("list artifacts"):
            root = f"{self.prefix}/sha256"
            found = self.fs.find(root) if self.fs.exists(root) else []
        for key in found:
            parts = str(key).rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2:
                yield parts[-2] + parts[-1]

    def count(self, limit: int = 1000) -> int:
        n = 0
        for _ in self.all():
            n += 1
            if n >= limit:
                break
        return n

    def remove(self, digests: set[str]) -> set[str]:
        gone = set()
        for digest in digests:
            with self._reaching(f"delete artifact {digest[:12]}"), contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._key(digest))
            (self.cache / digest[:2] / digest[2:]).unlink(missing_ok=True)
            gone.add(digest)
        return gone

    def remove_interrupted_copies(self) -> int:
        return _tmp_files(self.cache)  # an upload is atomic: only local copies can be left half-written

    def read_marker(self) -> str | None:
        with self._reaching("read the workspace marker"):
            key = f"{self.prefix}/{MARKER}"
            return bytes(self.fs.cat_file(key)).decode("utf-8") if self.fs.exists(key) else None

    def write_marker(self, text: str) -> None:
        with self._reaching("write the workspace marker"):
            self.fs.pipe_file(f"{self.prefix}/{MARKER}", text.encode("utf-8"))

    @property
    def marker_location(self) -> str:
        return f"{self.url}/{MARKER}"


ArtifactStore = FolderArtifacts | ObjectArtifacts


def open_artifacts(workspace: Path, url: str | None, setting: str = "artifacts") -> ArtifactStore:
    """The workspace's file store: its folder, or the object store its `artifacts:` names."""
    if url is None:
        return FolderArtifacts(workspace)
    return ObjectArtifacts(url, workspace / "cache", setting)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first[:300] + ("…" if len(first) > 300 else "")
