"""An effect: the image a job step runs in under `runtime: container`.

An environment given as a Docker build context is built as it stands; one that names an image runs in
that image (pulled if the engine lacks it, or the workspace's `base_image` in its place: public
registries are often out of reach); a conda file or requirements on top are installed into a virtual
environment of a derived image from wheels fetched on this machine, so no index URL or credential
reaches the image. Images are tagged by what they hold and built once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from mlops_gitops.backends.local.environments import EnvSource
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.runtime.containers import ContainerError, Engine
from mlops_gitops.runtime.envs import installer
from mlops_gitops.runtime.packaging import DEFAULT_BASE_IMAGE, fetch_wheels

# the venv is made in a first stage, so the wheels stay out of the image's layers; uv (the binary mlops-gitops
# runs on the host) installs in seconds where pip takes a minute, pip where uv is not at hand
_DERIVED = """FROM {base} AS install
COPY wheels /tmp/mlops-gitops-wheels
{install}
FROM {base}
COPY --from=install /opt/mlops-gitops-env /opt/mlops-gitops-env
ENV PATH=/opt/mlops-gitops-env/bin:$PATH
"""
_UV = """COPY tools/uv /tmp/mlops-gitops-tools/uv
RUN python3 -m venv /opt/mlops-gitops-env \\
 && UV_NO_CACHE=1 UV_OFFLINE=1 UV_NO_CONFIG=1 /tmp/mlops-gitops-tools/uv pip install -q --no-index \\
    --compile-bytecode --python /opt/mlops-gitops-env/bin/python --find-links /tmp/mlops-gitops-wheels \\
    -r /tmp/mlops-gitops-wheels/requirements.txt"""
_PIP = """RUN python3 -m venv /opt/mlops-gitops-env \\
 && /opt/mlops-gitops-env/bin/pip install -q --no-index --find-links /tmp/mlops-gitops-wheels \\
    -r /tmp/mlops-gitops-wheels/requirements.txt"""


class JobImages:
    def __init__(self, hooks: Hooks, base_image: str | None) -> None:
        self.hooks = hooks
        self.base_image = base_image
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            try:
                self._engine = Engine.connect()
            except ContainerError as exc:
                raise WorkspaceError(str(exc)) from None
        return self._engine

    def image_for(self, env: EnvSource | None) -> str:
        """The tag of the image a step with this environment runs in, built or fetched first if needed."""
        try:
            if env is not None and env.context is not None:
                return self._context(env, env.context)
            base = self._base(env)
            if env is not None and env.resolved is not None and env.resolved.requirements:
                return self._derived(env, base)
            return base
        except ContainerError as exc:
            raise WorkspaceError(f"{env.label if env else 'the step'}: {exc}") from None

    def _base(self, env: EnvSource | None) -> str:
        image = env.image if env is not None else None
        if self.base_image is not None:
            if image and image != self.base_image:
                self.hooks.note(f"  {env.label if env else 'the step'}: image {image} is replaced by the "
                                f"workspace's base_image {self.base_image}")
            image = self.base_image
        image = image or DEFAULT_BASE_IMAGE
        self.engine.ensure_image(image, hint="set base_image in mlops.yaml to an image the engine has")
        return image

    def _context(self, env: EnvSource, context: Path) -> str:
        tag = f"mlops-gitops-env:{env.context_digest or _digest(str(context))}"
        if not self.engine.has_image(tag):
            self.hooks.note(f"  building {env.label} from its Docker context as {tag}")
            self.engine.build(context, tag)
        return tag

    def _derived(self, env: EnvSource, base: str) -> str:
        assert env.resolved is not None
        requirements = sorted(env.resolved.requirements)
        tag = f"mlops-gitops-env:{_digest(json.dumps([base, requirements]))}"
        if self.engine.has_image(tag):
            return tag
        python = self.engine.python_version(base)
        if python is None:
            raise ContainerError(f"image {base} has no python3 to install the environment's packages into")
        self.hooks.note(f"  building {env.label} on {base} (Python {python}) as {tag}")
        with tempfile.TemporaryDirectory(prefix="mlops-gitops-env-") as tmp:
            root = Path(tmp)
            fetch_wheels(requirements, root / "wheels", python, self.hooks.note)
            (root / "wheels" / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
            uv = installer()
            if uv is not None:
                (root / "tools").mkdir()
                shutil.copy(uv, root / "tools" / "uv")
            (root / "Dockerfile").write_text(_DERIVED.format(base=base, install=_UV if uv else _PIP),
                                             encoding="utf-8")
            self.engine.build(root, tag)
        return tag


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]
