"""Reading remote inputs: `https://` URLs, and blobs of Azure datastores through fsspec (adlfs).

What Azure ML mounts or downloads for a job, the local workspace downloads: an `https://` file with a
conditional GET (ETag, Last-Modified), so an unchanged file is not fetched twice; a datastore path
(`azureml://datastores/<ds>/paths/<p>`, `wasbs://`, `abfss://`) blob by blob, each with its ETag. The
caller keeps the bytes (in the content-addressed store) and remembers the validators per object.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_gitops.redact import mask_credentials

REMOTE_SCHEMES = ("http", "https", "azureml", "wasbs", "wasb", "abfss", "abfs")
_DATASTORE = re.compile(r"azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)", re.I)
_WASB = re.compile(r"(?P<scheme>wasbs?|abfss?)://(?P<container>[^@/]+)@(?P<host>[^/]+)/?(?P<path>.*)", re.I)
TIMEOUT_S = 60


class RemoteError(Exception):
    """A remote input that cannot be read: the message says which setting or URL to fix."""


@dataclass(frozen=True)
class Datastore:
    name: str
    account_url: str
    container: str
    credential: str | None
    connection_string: str | None
    where: str  # mlops.yaml:LINE:COL of its entry

    @property
    def account_name(self) -> str:
        parts = urllib.parse.urlsplit(self.account_url)
        host = parts.hostname or ""
        if host.endswith(".core.windows.net"):
            return host.split(".", 1)[0]
        return parts.path.strip("/").split("/", 1)[0]  # an emulator: http://127.0.0.1:10000/devstoreaccount1


@dataclass(frozen=True)
class RemoteObject:
    key: str  # identifies the object for caching: the URL, or datastore:container/path
    rel: str  # its path inside the input (a file's name, or its path under the folder)
    etag: str  # what says whether it changed ("" when the source gives none)


def is_remote_input(path: str) -> bool:
    return "://" in path and path.split("://", 1)[0].lower() in REMOTE_SCHEMES


def shown(url: str) -> str:
    return mask_credentials(url)


# -- https ---------------------------------------------------------------------------------------------

def http_fetch(url: str, etag: str, dest: Path) -> tuple[bool, str]:
    """Download url to dest unless the server says that what we hold (etag) is current.
    Returns (downloaded, the validator to remember)."""
    request = urllib.request.Request(url, headers={"User-Agent": "mlops-gitops"})
    if etag.startswith("etag:"):
        request.add_header("If-None-Match", etag[5:])
    elif etag.startswith("modified:"):
        request.add_header("If-Modified-Since", etag[9:])
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            with open(dest, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            tag = response.headers.get("ETag")
            modified = response.headers.get("Last-Modified")
            return True, f"etag:{tag}" if tag else f"modified:{modified}" if modified else ""
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and etag:
            return False, etag
        raise RemoteError(f"{shown(url)} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"{shown(url)} cannot be reached: {reason}") from None


# -- datastores ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlobPath:
    store: Datastore
    path: str  # inside the container


def blob_path(url: str, datastores: dict[str, Datastore]) -> BlobPath:
    """The datastore and path an azureml://datastores/…, wasbs:// or abfss:// URL names."""
    m = _DATASTORE.fullmatch(url)
    if m is not None:
        name = m.group("ds")
        store = datastores.get(name)
        if store is None:
            raise RemoteError(
                f"datastore '{name}' is not configured for the local workspace: add it to mlops.yaml, e.g. "
                f"datastores: {{{name}: {{account_url: https://ACCOUNT.blob.core.windows.net, container: CONTAINER, "
                "credential: ${AZURE_STORAGE_KEY}}}")
        return BlobPath(store, m.group("path"))
    m = _WASB.fullmatch(url)
    if m is None:
        raise RemoteError(f"'{shown(url)}' is not a datastore URL (azureml://datastores/NAME/paths/PATH, "
                          "wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PATH)")
    account = m.group("host").split(".", 1)[0]
    for store in datastores.values():
        if store.account_name == account and store.container == m.group("container"):
            return BlobPath(store, m.group("path"))
    raise RemoteError(
        f"no datastore in mlops.yaml reaches container '{m.group('container')}' of account '{account}': add one, "
        f"e.g. datastores: {{{account}: {{account_url: https://{account}.blob.core.windows.net, "
        f"container: {m.group('container')}, credential: ${{AZURE_STORAGE_KEY}}}}}}")


def _connection_string(store: Datastore) -> str | None:
    if store.connection_string:
        return store.connection_string
    if not store.credential:
        return None
    scheme = urllib.parse.urlsplit(store.account_url).scheme or "https"
    secret = (f"SharedAccessSignature={store.credential.lstrip('?')}" if "sig=" in store.credential
              else f"AccountName={store.account_name};AccountKey={store.credential}")
    return f"DefaultEndpointsProtocol={scheme};{secret};BlobEndpoint={store.account_url.rstrip('/')};"


def blob_filesystem(store: Datastore) -> Any:
    """An adlfs file system for the datastore's account, with its credential (else DefaultAzureCredential)."""
    try:
        from adlfs import AzureBlobFileSystem
    except ImportError:
        raise RemoteError(f"datastore '{store.name}' is read through adlfs: pip install 'mlops-gitops[azure]'") \
            from None
    conn = _connection_string(store)
    if conn is not None:
        return AzureBlobFileSystem(connection_string=conn, skip_instance_cache=True)
    host = urllib.parse.urlsplit(store.account_url).hostname or ""
    if not host.endswith(".core.windows.net"):
        raise RemoteError(f"{store.where}: datastore '{store.name}' ({store.account_url}) has no credential: set "
                          "`credential` (an account key or SAS token) or `connection_string`; "
                          "DefaultAzureCredential reaches only Azure Storage accounts")
    return AzureBlobFileSystem(account_name=store.account_name, anon=False, skip_instance_cache=True)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return mask_credentials(text)[:300]


def blob_objects(fs: Any, where: BlobPath, folder: bool) -> list[RemoteObject]:
    """The blobs of a file or folder input, each with its ETag."""
    root = f"{where.store.container}/{where.path}".rstrip("/")
    try:
        if not folder:
            info = fs.info(root)
            if info.get("type") == "directory":
                raise RemoteError(f"{_blob_url(where)} is a folder; give the input type: uri_folder")
            return [RemoteObject(f"{where.store.name}:{root}", posixpath.basename(root), str(info.get("etag") or ""))]
        found = fs.find(root, detail=True)
    except RemoteError:
        raise
    except FileNotFoundError:
        raise RemoteError(f"{_blob_url(where)} does not exist") from None
    except Exception as exc:  # credentials, an unreachable account: the datastore's settings are the fix
        raise RemoteError(f"{where.store.where}: datastore '{where.store.name}' cannot read {_blob_url(where)}: "
                          f"{_reason(exc)} (check its account_url and credential)") from None
    objects = [RemoteObject(f"{where.store.name}:{name}", name[len(root) + 1:], str(info.get("etag") or ""))
               for name, info in sorted(found.items()) if info.get("type") != "directory" and name != root]
    if not objects:
        raise RemoteError(f"{_blob_url(where)} holds no files")
    return objects


def blob_fetch(fs: Any, obj: RemoteObject, where: BlobPath, dest: Path) -> None:
    try:
        fs.get_file(obj.key.split(":", 1)[1], str(dest))
    except Exception as exc:
        raise RemoteError(f"datastore '{where.store.name}' cannot read {obj.rel}: {_reason(exc)}") from None


def _blob_url(where: BlobPath) -> str:
    return f"azureml://datastores/{where.store.name}/paths/{where.path}"


# -- hashing what arrived --------------------------------------------------------------------------------

def download_hashed(fetch: Callable[[Path], Any], folder: Path) -> tuple[Path, str, int, Any]:
    """Run fetch(into a temporary file under folder); the file, its SHA-256, size and fetch's result."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".remote-")
    os.close(fd)
    tmp = Path(name)
    try:
        result = fetch(tmp)
        h = hashlib.sha256()
        size = 0
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, h.hexdigest(), size, result
