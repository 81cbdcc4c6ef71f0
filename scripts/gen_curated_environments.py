"""Regenerate mlops_gitops/runtime/curated_environments.json from Microsoft's Azure/azureml-assets repository.

Azure ML's curated environments (`azureml:AzureML-<name>@latest`,
`azureml://registries/azureml/environments/<name>/versions/<v>`) are built from asset folders in
https://github.com/Azure/azureml-assets: `asset.yaml` (the name; `spec.yaml` only says `{{asset.name}}`),
`context/conda_dependencies.yaml` (the conda spec) and `context/Dockerfile` (which may `pip install` more after
the conda environment is created). For each CPU folder in ASSETS this script fetches those files from
`https://raw.githubusercontent.com/Azure/azureml-assets/<commit>/<path>` at the commit noted for each file,
and writes, per environment: its aliases, Python version, asset version, the conda file's path and commit, the
conda channels and dependencies exactly as published (`{{latest-pypi-version}}` placeholders included: the
azureml-assets build substitutes the newest PyPI release when it publishes), the Dockerfile's extra
`pip install` arguments, and every file read with its commit. GPU_ONLY names the GPU-only curated environments
(to refuse with a clear error); SKIPPED names others that are known but carry no package list here.

The machine this file was written on cannot reach GitHub: the stored JSON was built by this script with
`--from-dir`, from the same files at the same commits as read through the project's source index (a stored
copy of public repositories; one stored version per file, not necessarily the newest). A maintainer runs it
where GitHub is reachable:

    python scripts/gen_curated_environments.py            # fetch from GitHub, write the JSON
    python scripts/gen_curated_environments.py --check    # exit 1 when the stored JSON differs
    python scripts/gen_curated_environments.py --from-dir DIR   # read DIR/<commit>/<path> instead

To move to newer files, change the commits below (one per file) and rerun.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import shlex
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

SOURCE = "https://github.com/Azure/azureml-assets"
RAW_URL = "https://raw.githubusercontent.com/Azure/azureml-assets/{commit}/{path}"
GENERATED_BY = "scripts/gen_curated_environments.py"
OUTPUT = Path(__file__).resolve().parent.parent / "mlops_gitops" / "runtime" / "curated_environments.json"

TRAINING = "assets/training/general/environments/"
INFERENCE = "assets/inference/environments/"


@dataclass(frozen=True)
class Asset:
    """One asset folder and the commit each of its files is read at (None: that file is not read)."""

    folder: str
    conda: str  # context/conda_dependencies.yaml
    asset: str | None = None  # asset.yaml, for the name and version; without it the folder's name is used
    dockerfile: str | None = None  # context/Dockerfile, for `pip install` lines after the conda environment
    notes: tuple[str, ...] = ()


ASSETS: tuple[Asset, ...] = (
    Asset(
        TRAINING + "sklearn-1.5",
        conda="0038cd4e899b90da15647ec07ebf367eabc63229",
        asset="16933acaf394d6d3797dcda92291c22b1c6039ac",
        dockerfile="0103fd16903e3cba56975012d96b57876b4ae0e6",
    ),
    Asset(
        TRAINING + "sklearn-1.1",
        conda="018d7fa219973f8f9a0114cffdadfe4397749a3c",
        notes=(
            "asset.yaml and the Dockerfile were not in the source index: the name is the folder's.",
            "spec.yaml (2c50c91d) tags Python 3.8; the conda file read pins python=3.9.",
        ),
    ),
    Asset(
        TRAINING + "sklearn-1.0",
        conda="018d7fa219973f8f9a0114cffdadfe4397749a3c",
        dockerfile="1a08ea51c725c39820f10aee4a547c4c23dde192",
        notes=(
            "asset.yaml and spec.yaml were not in the source index: the name is the folder's.",
            "The Dockerfile read installs 'cryptography<40.0' after the conda file's cryptography>=42.0.4"
            " (the two files are different stored versions).",
        ),
    ),
    Asset(
        TRAINING + "lightgbm-3.3",
        conda="09170d521e96202028db6d5b5f6408efc96bec45",
        dockerfile="0103fd16903e3cba56975012d96b57876b4ae0e6",
        notes=(
            "asset.yaml was not in the source index: the name is the folder's.",
            "Despite the name it installs lightgbm>=4.6.0 (spec.yaml tags LightGBM 4.6), with xgboost~=1.7.6.",
        ),
    ),
    Asset(
        TRAINING + "lightgbm",
        conda="f35dc56c3df78c13fc255e82c9f9c1d3652f69f2",
        asset="f35dc56c3df78c13fc255e82c9f9c1d3652f69f2",
        dockerfile="f35dc56c3df78c13fc255e82c9f9c1d3652f69f2",
        notes=("lightgbm>=4.6.0 with xgboost~=1.7.6; the curated image for XGBoost as well.",),
    ),
    Asset(
        INFERENCE + "azurecore3.0-inference",
        conda="16e62d88c3993c7eeee380682cea3986334dab5e",
        asset="2aac9277888dda21e79a29de32c752b86b51e7f2",
        dockerfile="04907475ebe5a6d6afc9af9680cbf9ab9b18dbd0",
        notes=(
            "Built on Azure Linux 3.0 (mcr.microsoft.com/azurelinux/base/core:3.0), not Ubuntu.",
            "The Dockerfile read does not copy conda_dependencies.yaml or create the environment; it only points"
            " AZUREML_CONDA_ENVIRONMENT_PATH at /opt/miniconda/envs/amlenv.",
        ),
    ),
    Asset(
        INFERENCE + "minimal-ubuntu22.04-py311-cpu-inference",
        conda="178a774d57b250caa931d2c4b1cb7350e8c92e5b",
        asset="349b30abaad79f7eb305787f196c4d168dd912bf",
        dockerfile="58beaf51970aa2f9ae56a4653bf175986144f7ea",
    ),
    Asset(
        INFERENCE + "minimal-ubuntu20.04-py39-cpu-inference",
        conda="178a774d57b250caa931d2c4b1cb7350e8c92e5b",
        asset="264bfbbda63a6cca110b6843f85bd64d3395c648",
        dockerfile="cddcd9d555e95440518842a44e31cd2e0421796f",
        notes=(
            "The asset.yaml read names it minimal-py39-inference; another stored version (35eeed3a) names it"
            " minimal-ubuntu20.04-py39-cpu-inference, the folder's name: both are aliases.",
        ),
    ),
    Asset(
        INFERENCE + "minimal-ubuntu20.04-py38-cpu-inference",
        conda="08bec9cce6b7cfaa3f0c3f0a4c5e9cb6f05ebcf4",
        asset="81ddb2e65ba2b7dbb55bb5089a068bc52acdef6f",
        dockerfile="d35888b7f3ca5a474f5c536d4ebe5a69ca7e3b98",
    ),
    Asset(
        INFERENCE + "minimal-ubuntu20.04-py311-cpu-inference",
        conda="190c01868978159404ed1394027a6a17943d2082",
        asset="35eeed3a70bd24c4c72bcda03a02ced6f41b292a",
        notes=("The Dockerfile was not in the source index.",),
    ),
    Asset(
        INFERENCE + "minimal-py311-inference",
        conda="0103fd16903e3cba56975012d96b57876b4ae0e6",
        asset="1cc97d65e7c17b904d72aa3f597b03334035835f",
        dockerfile="619fbe567aa3aad39ca3bd3b6e94c979ad8b01f6",
    ),
    Asset(
        INFERENCE + "minimal-app-quickstart",
        conda="1fb5506c67ad031802b1a8e51aebb8cab43a3a28",
        asset="03c59bc8de5cf0231d8187234dcaeda797e330a2",
        dockerfile="154c95c23aadc09d5ca56ee09a65e1e7e52ded9c",
        notes=("An app image (poetry, uvicorn; CMD entrypoint.sh), without azureml-inference-server-http.",),
    ),
    Asset(
        INFERENCE + "minimal-ubuntu22.04-py311-cpu-app-quickstart",
        conda="c7aeeac92dbe45c8c653190640c68afe4d94d76b",
        asset="508ff22192267929e0a3784196bb0a3f43d9371e",
        notes=(
            "An app image (poetry, uvicorn), without azureml-inference-server-http.",
            "The Dockerfile was not in the source index.",
        ),
    ),
    Asset(
        INFERENCE + "mlflow-ubuntu20.04-py39-cpu-inference",
        conda="1f40de941adec7582e82dea0201bf2328aee268c",
        asset="92cf2d214bb11fda2c0d44a6850349ba6b7e66fa",
        dockerfile="2d55303b096ffdf31bfe22d2610a42185ac69077",
        notes=(
            "The asset.yaml read names it mlflow-py39-inference; the folder's name is an alias.",
            "Another stored version of the conda file (87693e7d) lists pip and, under pip:,"
            " azureml-inference-server-http, azureml-ai-monitoring and mlflow instead.",
        ),
    ),
    Asset(
        INFERENCE + "mlflow-ubuntu22.04-py312-cpu-inference",
        conda="2ab14035b3e93efa4e0fceba9ef22b02087bf3bf",
        asset="29f3485c6b079ef98db1b59f2a6c2e79c8d0abbc",
        dockerfile="597d70aefd325ea64690808ae788d596f2d3097a",
    ),
    Asset(
        INFERENCE + "mlflow-py312-inference",
        conda="5330f4e898179fb60c9ee72433de9cf35cc55163",
        dockerfile="01abf15d57464b3e0ddb7fb72c27a6cdb69fa845",
        notes=("asset.yaml was not in the source index: the name is the folder's.",),
    ),
)

# Curated environments that need a GPU (CUDA images), seen in the same repository: names only.
GPU_ONLY: tuple[str, ...] = (
    "acpt-pytorch-1.11-cuda11.3",
    "acpt-pytorch-1.12-cuda11.6",
    "acpt-pytorch-1.12-py39-cuda11.6",
    "acpt-pytorch-1.13-cuda11.7",
    "acpt-pytorch-2.0-cuda11.7",
    "acpt-pytorch-2.1-cuda12.1",
    "acpt-pytorch-2.1-cuda12.1-py3.10",
    "acpt-pytorch-2.2-cuda12.1",
    "acpt-pytorch-2.2-cuda12.1-profiler",
    "acpt-pytorch-2.3-cuda12.1",
    "acpt-pytorch-2.4-cuda12.1",
    "acpt-pytorch-2.4-cuda12.4",
    "acpt-pytorch-2.5-cuda12.4",
    "acpt-pytorch-2.7-cuda12.6",
    "acpt-pytorch-2.8-cuda12.6",
    "tensorflow-2.11-cuda11",
    "tensorflow-2.12-cuda11",
    "tensorflow-2.16-cuda11",
    "tensorflow-2.16-cuda12",
    "minimal-py312-cuda11.8-inference",
    "minimal-py312-cuda12.4-inference",
    "minimal-ubuntu20.04-py38-cuda11.6.2-gpu-inference",
    "minimal-ubuntu20.04-py39-cuda11.6.2-inference",
    "minimal-py39-cuda11.6.32-inference",
    "minimal-ubuntu22.04-py39-cuda11.8-gpu-inference",
    "ai-ml-automl-dnn-forecasting-gpu",
    "ai-ml-automl-dnn-gpu",
    "ai-ml-automl-dnn-text-gpu",
    "ai-ml-automl-dnn-text-gpu-ptca",
    "ai-ml-automl-dnn-vision-gpu",
    "ai-ml-automl-gpu",
)

# Known curated environments without a package list here, and why.
_NOT_INDEXED = "its context/conda_dependencies.yaml was not in the source index, so no package list is recorded"
_AUTOML = "an AutoML environment; its package list was not collected"
SKIPPED: dict[str, str] = {
    "windows": "a Windows image (spec.yaml os_type: windows); not runnable on Linux",
    "minimal-ubuntu22.04-py39-cpu-inference": _NOT_INDEXED,
    "minimal-py311-app-quickstart": _NOT_INDEXED,
    "ai-ml-automl": _AUTOML,
    "ai-ml-automl-dnn": _AUTOML,
    "aml-automl": _AUTOML,
    "azure-ai-al-automl": _AUTOML,
    "azureml-automl-r": _AUTOML,
}

NOTE = (
    "Built from Azure/azureml-assets files at the commits noted per file. '{{latest-pypi-version}}' is the"
    " repository's placeholder for the newest PyPI release at publish time; version 'auto' means the registry"
    " numbers each published version. dockerfile_pip: arguments of `pip install` lines in the Dockerfile."
)

Fetch = Callable[[str, str], str]  # (path, commit) -> text


def fetch_github(path: str, commit: str) -> str:
    url = RAW_URL.format(commit=commit, path=urllib.parse.quote(path))
    with urllib.request.urlopen(url, timeout=60) as response:
        data: bytes = response.read()
    return data.decode("utf-8")


def fetch_from_dir(root: Path) -> Fetch:
    def fetch(path: str, commit: str) -> str:
        return (root / commit / path).read_text(encoding="utf-8")

    return fetch


def _load_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def python_version(dependencies: list[Any]) -> str | None:
    """`python=3.9.13` -> "3.9": major.minor of the conda dependency on python."""
    for dep in dependencies:
        if isinstance(dep, str):
            match = re.fullmatch(r"python\s*(?:==|=|>=|~=)?\s*(\d+\.\d+)[.\d*]*", dep.strip())
            if match:
                return match.group(1)
    return None


# pip options that take a value (the value is not a requirement)
_PIP_VALUE_OPTIONS = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url", "--extra-index-url"}
    | {"-f", "--find-links", "-t", "--target", "--prefix", "--root", "--platform", "--python-version"}
)


def _pip_install_args(words: list[str]) -> list[str]:
    for i in range(len(words) - 1):
        if posixpath.basename(words[i]) in ("pip", "pip3") and words[i + 1] == "install":
            found: list[str] = []
            skip = False
            for word in words[i + 2 :]:
                if skip:
                    skip = False
                elif word.startswith("-"):
                    skip = word in _PIP_VALUE_OPTIONS
                else:
                    found.append(word)
            return found
    return []


def dockerfile_pip_installs(text: str) -> list[str]:
    """The requirements named by `pip install` in the Dockerfile's RUN instructions, in order."""
    joined = re.sub(r"\\[ \t]*\r?\n", " ", text)
    found: list[str] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped.upper().startswith("RUN "):
            continue
        for segment in re.split(r"&&|\|\||;", stripped[4:]):
            try:
                words = shlex.split(segment)
            except ValueError:
                continue
            found.extend(_pip_install_args(words))
    return found


def build_entry(asset: Asset, fetch: Fetch) -> tuple[str, dict[str, Any]]:
    folder_name = posixpath.basename(asset.folder)
    conda_path = f"{asset.folder}/context/conda_dependencies.yaml"
    conda = _load_yaml(fetch(conda_path, asset.conda))
    sources = [{"path": conda_path, "commit": asset.conda}]

    name, version = folder_name, None
    if asset.asset is not None:
        asset_path = f"{asset.folder}/asset.yaml"
        meta = _load_yaml(fetch(asset_path, asset.asset))
        name = str(meta["name"])
        version = None if meta.get("version") is None else str(meta["version"])
        sources.append({"path": asset_path, "commit": asset.asset})

    dockerfile_pip: list[str] = []
    if asset.dockerfile is not None:
        dockerfile_path = f"{asset.folder}/context/Dockerfile"
        dockerfile_pip = dockerfile_pip_installs(fetch(dockerfile_path, asset.dockerfile))
        sources.append({"path": dockerfile_path, "commit": asset.dockerfile})

    aliases = [f"AzureML-{name}"]
    if folder_name != name:
        aliases += [folder_name, f"AzureML-{folder_name}"]
    dependencies: list[Any] = list(conda.get("dependencies") or [])
    entry: dict[str, Any] = {
        "aliases": aliases,
        "python": python_version(dependencies),
        "version": version,
        "path": conda_path,
        "commit": asset.conda,
        "conda": {"channels": list(conda.get("channels") or []), "dependencies": dependencies},
        "dockerfile_pip": dockerfile_pip,
        "sources": sources,
    }
    if asset.notes:
        entry["notes"] = list(asset.notes)
    return name, entry


def build(fetch: Fetch) -> dict[str, Any]:
    environments: dict[str, Any] = {}
    for asset in ASSETS:
        name, entry = build_entry(asset, fetch)
        if name in environments:
            raise SystemExit(f"two asset folders give the environment name {name!r}")
        environments[name] = entry
    return {
        "source": SOURCE,
        "generated_by": GENERATED_BY,
        "note": NOTE,
        "environments": environments,
        "gpu_only": list(GPU_ONLY),
        "skipped": dict(SKIPPED),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--from-dir", type=Path, help="read DIR/<commit>/<path> instead of fetching from GitHub")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the JSON goes (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when the output file differs")
    args = parser.parse_args(argv)

    fetch = fetch_from_dir(args.from_dir) if args.from_dir else fetch_github
    try:
        text = render(build(fetch))
    except (urllib.error.URLError, OSError) as exc:
        print(f"could not read the asset files: {exc}", file=sys.stderr)
        return 2
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date: rerun {GENERATED_BY}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} ({len(ASSETS)} environments)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
