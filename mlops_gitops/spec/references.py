"""References between resources: `azureml:name:version`, `azureml:name@latest`, local paths, URIs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REMOTE_PREFIXES = ("http://", "https://", "wasbs://", "wasb://", "abfss://", "adl://", "s3://", "gs://", "runs:/",
                   "azureml://", "models:/")


@dataclass(frozen=True)
class AssetRef:
    """`azureml:<name>:<version>`, `azureml:<name>@<label>` or `azureml:<name>`."""

    name: str
    version: str | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"azureml:{self.name}:{self.version}"
        if self.label is not None:
            return f"azureml:{self.name}@{self.label}"
        return f"azureml:{self.name}"


def parse_asset_ref(text: str) -> AssetRef | None:
    """Parse the short `azureml:` forms; long ARM ids and `azureml://` URIs return None."""
    if not text.startswith("azureml:") or text.startswith("azureml://"):
        return None
    body = text[len("azureml:") :]
    if not body or body.startswith("/"):
        return None
    if "@" in body:
        name, _, label = body.partition("@")
        return AssetRef(name, label=label or None)
    if ":" in body:
        name, _, version = body.partition(":")
        return AssetRef(name, version=version or None)
    return AssetRef(body)


_JOB_OUTPUT = re.compile(r"^azureml://jobs/([A-Za-z0-9][A-Za-z0-9_-]*)/outputs/([A-Za-z0-9_]+)(?:/paths/(.*))?$")


@dataclass(frozen=True)
class JobOutputRef:
    """`azureml://jobs/<job>/outputs/<output>[/paths/<sub/path>]`: files a pipeline job of the tree produced."""

    job: str
    output: str
    subpath: str = ""

    def __str__(self) -> str:
        return f"job:{self.job}/outputs/{self.output}" + (f"/paths/{self.subpath}" if self.subpath else "")


def parse_job_output(text: str) -> JobOutputRef | None:
    m = _JOB_OUTPUT.match(text.strip())
    if m is None:
        return None
    return JobOutputRef(m.group(1), m.group(2), (m.group(3) or "").strip("/"))


def resolved_job_output(ref: object) -> JobOutputRef | None:
    """A job-output reference as plan records it (`job:<job>/outputs/<output>[/paths/<sub>]`), parsed back."""
    if not isinstance(ref, str) or not ref.startswith("job:"):
        return None
    job, _, rest = ref[len("job:"):].partition("/outputs/")
    output, _, sub = rest.partition("/paths/")
    return JobOutputRef(job, output, sub)


def is_remote(text: str) -> bool:
    return text.startswith(REMOTE_PREFIXES) or (text.startswith("azureml:") and parse_asset_ref(text) is None)


def local_path(text: str) -> str:
    """Strip the `file:` prefix some files use for local paths."""
    return text[len("file:") :] if text.startswith("file:") else text


@dataclass(frozen=True)
class PathCheck:
    resolved: Path
    exists: bool
    inside: bool


def check_local_path(base_dir: Path, text: str, root: Path) -> PathCheck:
    """Resolve a path written in a file under base_dir; say whether it exists and stays in root."""
    try:
        resolved = (base_dir / local_path(text)).resolve()
    except (RuntimeError, OSError):  # a link loop: it leads nowhere
        return PathCheck(Path(os.path.abspath(base_dir / local_path(text))), False, True)
    try:
        resolved.relative_to(root.resolve())
        inside = True
    except ValueError:
        inside = False
    return PathCheck(resolved, resolved.exists() if inside else False, inside)
