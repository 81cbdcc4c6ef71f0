"""Package one deployment as an OCI image: a build context whose Dockerfile comes from templates/.

The image holds the model, the scoring code, the deployment's environment and this project's own
scoring server (its source and the exact versions of the packages it runs on here), with a
serving.json that serves the one deployment. The context is written deterministically, so its digest
names the image: an unchanged deployment is never rebuilt.

Nothing secret goes into a layer: the packages are downloaded on this machine (with its index settings
and credentials) into a wheelhouse in the context, so the build installs offline; the deployment's
environment variables and keys are given to the container when it runs, never written into the image.
Every value rendered into the Dockerfile is checked or quoted so that it cannot start a new instruction.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import mlops_gitops
from mlops_gitops.fsutil import safe_join, user_cache
from mlops_gitops.imageref import is_image_reference
from mlops_gitops.redact import mask_credentials
from mlops_gitops.runtime.containers import ContainerError, Engine
from mlops_gitops.runtime.envs import installer
from mlops_gitops.runtime.serving.config import DeploymentConfig, EndpointConfig, ServingConfig

if TYPE_CHECKING:  # jinja2 and importlib.metadata only when an image is built: not on every CLI start
    import jinja2

DEFAULT_BASE_IMAGE = "mlops-gitops-base:bookworm"
APP = "/var/azureml-app"
SERVER_PYTHON = "/opt/mlops/server/bin/python"
ENV_PYTHON = "/opt/mlops/env/bin/python"
# What the endpoint host imports (runtime/serving); pinned to the versions installed here.
SERVER_PACKAGES = ("uvicorn", "uvloop", "httptools", "orjson", "numpy", "onnxruntime", "prometheus-client")
LABEL_PREFIX = "org.mlops-gitops"


@dataclass
class ImageRecipe:
    deployment: DeploymentConfig  # paths as on this machine (model_dir, code_dir)
    base_image: str = DEFAULT_BASE_IMAGE
    # Where a scoring script's Python comes from: a venv with `env_requirements` built in the image,
    # the base image's own python3 (an environment given as an image or Docker context), or the server's.
    script_python: Literal["env", "image", "server"] = "server"
    env_requirements: tuple[str, ...] = ()
    env_label: str = ""
    env_context: Path | None = None  # an environment's Docker build context: built first, used as base
    labels: dict[str, str] = field(default_factory=dict)


def server_requirements() -> list[str]:
    from importlib import metadata

    reqs = []
    for name in SERVER_PACKAGES:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


def _one_line(value: object) -> object:
    """Every value rendered into a Dockerfile stays on its line: control characters are refused."""
    if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ContainerError(f"refusing to render {value!r} into a Dockerfile: it holds a control character")
    return value


def _quoted(value: str) -> str:
    """A Dockerfile double-quoted word: no variable expansion, no way out of the quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _template() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
                             finalize=_one_line)
    env.filters["quoted"] = _quoted
    env.filters["json"] = lambda v: json.dumps(v)  # exec/JSON forms: Docker parses them as JSON
    return env.from_string(files("mlops_gitops").joinpath("templates/Dockerfile.j2").read_text(encoding="utf-8"))


def host_python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def wheel_cache() -> Path:
    """Where fetched wheelhouses are kept between builds (MLOPS_GITOPS_CACHE, else the user's cache folder)."""
    return user_cache("wheelhouses")


def fetch_wheels(requirements: tuple[str, ...] | list[str], dest: Path, python_version: str,
                 log: Callable[[str], None]) -> None:
    """The wheels of `requirements` for `python_version` in dest, fetched on this machine (its index settings
    and credentials are used here and never reach the image) and kept in a cache keyed by what was asked."""
    dest.mkdir(parents=True, exist_ok=True)
    if not requirements:
        return
    key = hashlib.sha256(json.dumps([sorted(requirements), python_version, platform.machine()]).encode())
    cached = wheel_cache() / key.hexdigest()[:24]
    if not (cached / ".complete").exists():
        staging = cached.with_name(f"{cached.name}.tmp-{uuid.uuid4().hex}")  # builds run in parallel
        shutil.rmtree(staging, ignore_errors=True)
        _download(requirements, staging, python_version, log)
        (staging / ".complete").write_text("")
        try:
            os.rename(staging, cached)
        except OSError:  # fetched meanwhile by another build
            shutil.rmtree(staging, ignore_errors=True)
    for wheel in cached.iterdir():
        if wheel.name != ".complete":
            try:
                os.link(wheel, dest / wheel.name)
            except OSError:
                shutil.copyfile(wheel, dest / wheel.name)


def _download(requirements: tuple[str, ...] | list[str], dest: Path, python_version: str,
              log: Callable[[str], None]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlops-gitops-reqs-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        if python_version == host_python_version():  # sdists are built into wheels here
            cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(dest), "-r", str(reqs)]
        else:  # another interpreter in the image: binary wheels for it
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version",
                   python_version, "--dest", str(dest), "-r", str(reqs)]
        log(f"  fetching {len(requirements)} package(s) for Python {python_version} into the build context")
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise ContainerError(f"could not fetch the image's packages for Python {python_version}:\n"
                             f"{mask_credentials(tail)}")


class _Context:
    """Files written into the build context, hashed as they go."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.digests: dict[str, str] = {}

    def write(self, rel: str, data: bytes, mode: int | None = None) -> None:
        target = safe_join(self.root, rel, what="file")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if mode is not None:
            target.chmod(mode)
        self.digests[rel] = hashlib.sha256(data).hexdigest()

    def copy_tree(self, source: Path, prefix: str, keep: Callable[[Path], bool] = lambda p: True) -> None:
        for path in sorted(source.rglob("*")):
            if path.is_file() and keep(path) and path.name != ".complete":
                self.write(f"{prefix}/{path.relative_to(source).as_posix()}", path.read_bytes())

    def digest(self) -> str:
        text = json.dumps(sorted(self.digests.items()))
        return hashlib.sha256(text.encode()).hexdigest()


def _in_image(recipe: ImageRecipe) -> DeploymentConfig:
    """The deployment as the image serves it: paths inside the image, no environment variable values
    (they may be secrets: the container gets them when it runs)."""
    cfg = recipe.deployment
    if cfg.model_dir is None:
        model_dir = None
    elif cfg.model_name:
        model_dir = f"{APP}/azureml-models/{cfg.model_name}/{cfg.model_version}"
    else:
        model_dir = f"{APP}/model"
    python = {"env": ENV_PYTHON, "image": "python3", "server": SERVER_PYTHON}[recipe.script_python]
    return replace(cfg, model_dir=model_dir, code_dir=f"{APP}/code" if cfg.code_dir else None,
                   python=python if cfg.scoring_script else None, image=None, environment_variables={})


def write_context(recipe: ImageRecipe, root: Path, base_image: str | None = None,
                  python_version: str | None = None) -> str:
    """Lay out the build context for `recipe` in `root` (all but the wheelhouse: `add_wheelhouse`); returns
    its digest, which covers the requirements and the Python version the wheels are fetched for."""
    base = base_image or recipe.base_image
    if not is_image_reference(base):
        raise ContainerError(f"{base!r} is not a container image reference")
    ctx = _Context(root)
    cfg = _in_image(recipe)
    serving = ServingConfig(endpoints={cfg.endpoint: EndpointConfig(cfg.endpoint, "none", [], {cfg.name: 100})},
                            deployments={cfg.key: cfg})
    ctx.write("serving.json", serving.to_json().encode())
    ctx.write("server-requirements.txt", "\n".join(server_requirements()).encode() + b"\n")
    uv = installer()
    if uv is not None:  # stage 1's installer (pip in the base image's venvs without it)
        ctx.write("tools/uv", Path(uv).read_bytes(), mode=0o755)
    if recipe.script_python == "env":
        ctx.write("env-requirements.txt", "\n".join(recipe.env_requirements).encode() + b"\n")
    ctx.digests["wheelhouse for Python"] = python_version or host_python_version()
    package = Path(mlops_gitops.__file__).parent
    ctx.copy_tree(package, "lib/mlops_gitops", keep=lambda p: p.suffix == ".py" and "__pycache__" not in p.parts)
    if recipe.deployment.model_dir:
        ctx.copy_tree(Path(recipe.deployment.model_dir), "model")
    if recipe.deployment.code_dir:
        ctx.copy_tree(Path(recipe.deployment.code_dir), "code")
    names = sorted(recipe.deployment.environment_variables)
    labels = {f"{LABEL_PREFIX}.endpoint": cfg.endpoint, f"{LABEL_PREFIX}.deployment": cfg.name,
              **({f"{LABEL_PREFIX}.model": f"{cfg.model_name}:{cfg.model_version}"} if cfg.model_name else {}),
              **({f"{LABEL_PREFIX}.environment-variables": ",".join(names)} if names else {}),
              **recipe.labels}
    dockerfile = _template().render(
        version=mlops_gitops.__version__, endpoint=cfg.endpoint, deployment=cfg.name, base_image=base,
        labels=labels, env_venv=recipe.script_python == "env", env_wheels=bool(recipe.env_requirements),
        env_label=recipe.env_label, uv=uv is not None,
        model_dir=cfg.model_dir, code_dir=cfg.code_dir, runtime_variables=names)
    ctx.write("Dockerfile", dockerfile.encode())
    return ctx.digest()


def add_wheelhouse(recipe: ImageRecipe, root: Path, python_version: str, log: Callable[[str], None]) -> None:
    """The packages the image installs, fetched on this machine: the build needs no index and no credentials."""
    fetch_wheels(server_requirements(), root / "wheelhouse" / "server", python_version, log)
    if recipe.script_python == "env":
        fetch_wheels(recipe.env_requirements, root / "wheelhouse" / "env", python_version, log)


def default_tag(recipe: ImageRecipe, digest: str) -> str:
    cfg = recipe.deployment
    return f"mlops-gitops/{cfg.endpoint}-{cfg.name}:{digest[:16]}"


def build_image(engine: Engine, recipe: ImageRecipe, tag: str | None = None,
                log: Callable[[str], None] = print) -> str:
    """Build (or find already built) the image of `recipe`; returns its tag."""
    base = _base_image(engine, recipe, log)
    python_version = engine.python_version(base) or host_python_version()
    with tempfile.TemporaryDirectory(prefix="mlops-gitops-image-") as tmp:
        digest = write_context(recipe, Path(tmp), base, python_version)
        name = tag or default_tag(recipe, digest)
        if tag is None and engine.has_image(name):
            return name  # same context, same image
        add_wheelhouse(recipe, Path(tmp), python_version, log)
        log(f"  building image {name} from {base}")
        engine.build(Path(tmp), name)
    return name


def _base_image(engine: Engine, recipe: ImageRecipe, log: Callable[[str], None]) -> str:
    if recipe.env_context is None:
        hint = ("run scripts/ensure-podman.sh to build it" if recipe.base_image == DEFAULT_BASE_IMAGE
                else "set base_image in the workspace config or pass --base-image to use another")
        engine.ensure_image(recipe.base_image, hint)
        return recipe.base_image
    tree = sorted((p.relative_to(recipe.env_context).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in recipe.env_context.rglob("*") if p.is_file() and p.name != ".complete")
    tag = f"mlops-gitops/env:{hashlib.sha256(json.dumps(tree).encode()).hexdigest()[:16]}"
    if not engine.has_image(tag):
        if not (recipe.env_context / "Dockerfile").is_file():
            raise ContainerError(f"{recipe.env_label}: its build context has no Dockerfile")
        log(f"  building the environment image {tag} ({recipe.env_label})")
        engine.build(recipe.env_context, tag)
    return tag


def copy_context(recipe: ImageRecipe, dest: Path, log: Callable[[str], None] = print) -> str:
    """Write the build context to `dest` (for `package --output`), wheels for this machine's Python
    included; returns its digest."""
    if dest.exists() and any(dest.iterdir()):
        raise ContainerError(f"{dest} is not empty")
    if recipe.env_context is not None:
        raise ContainerError(f"{recipe.env_label} is built from a Docker context, so the image's base exists only "
                             "once an engine has built it; package it without --output")
    staging = Path(tempfile.mkdtemp(prefix="mlops-gitops-context-"))
    try:
        digest = write_context(recipe, staging)
        add_wheelhouse(recipe, staging, host_python_version(), log)
        shutil.copytree(staging, dest, dirs_exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return digest
