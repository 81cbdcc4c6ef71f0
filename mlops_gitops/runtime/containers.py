"""The container driver: a Docker Engine API (Docker, or Podman's compatible service) through `docker`.

Only what packaging and the container runtime need: build an image from a folder, make sure a base
image is present, run, stop and remove labelled containers, read their logs. Every engine failure
becomes a ContainerError with a message a user can act on.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_gitops import progress

LABEL = "org.mlops-gitops"


class ContainerError(Exception):
    pass


def _docker() -> Any:
    try:
        import docker
    except ImportError:
        raise ContainerError("the container runtime needs the docker library: "
                             "pip install 'mlops-gitops[docker]'") from None
    return docker


class Engine:
    """A connection to the engine named by DOCKER_HOST (or the default socket)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._pythons: dict[str, str | None] = {}

    @classmethod
    def connect(cls, base_url: str | None = None) -> Engine:
        docker = _docker()
        url = base_url or os.environ.get("DOCKER_HOST")
        where = url or "the default Docker socket"
        try:
            client = docker.DockerClient(base_url=url, timeout=600) if url else docker.from_env(timeout=600)
            client.ping()
        except Exception as exc:  # DockerException, connection errors, bad URLs
            raise ContainerError(
                f"no container engine reachable at {where} ({_short(exc)}); start Docker, or Podman's "
                "service (scripts/ensure-podman.sh) and set DOCKER_HOST") from None
        return cls(client)

    # -- images ----------------------------------------------------------------------------------

    def has_image(self, name: str) -> bool:
        docker = _docker()
        try:
            self.client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise ContainerError(f"the engine could not look up image {name}: {_short(exc)}") from None

    def ensure_image(self, name: str, hint: str = "") -> None:
        """Make sure `name` is present, pulling it if the engine does not have it."""
        if self.has_image(name):
            return
        try:
            self.client.images.pull(name)
        except Exception as exc:
            raise ContainerError(f"image {name} is not in the engine and could not be pulled: {_short(exc)}"
                                 + (f"; {hint}" if hint else "")) from None

    def build(self, context: Path, tag: str, labels: dict[str, str] | None = None) -> None:
        """Build `context` (which holds a Dockerfile) as `tag`; the build log tail is in any error."""
        docker = _docker()
        lines: list[str] = []
        try:
            stream = self.client.api.build(path=str(context), tag=tag, rm=True, forcerm=True, decode=True,
                                           network_mode="host", labels=labels or {})
            with progress.task(f"building image {tag}") as shown:
                for chunk in stream:
                    if "error" in chunk or "errorDetail" in chunk:
                        detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
                        raise ContainerError(f"building {tag} failed: {str(detail).strip()}\n"
                                             + "\n".join(lines[-15:]))
                    text = str(chunk.get("stream") or "").rstrip()
                    if text:
                        lines.append(text)
                        shown.detail = text.splitlines()[-1][:80]
        except docker.errors.APIError as exc:
            raise ContainerError(f"building {tag} failed: {_short(exc)}\n" + "\n".join(lines[-15:])) from None
        if not self.has_image(tag):  # Podman reports some failures only by not producing the image
            raise ContainerError(f"building {tag} produced no image:\n" + "\n".join(lines[-15:]))

    def python_version(self, image: str) -> str | None:
        """major.minor of the image's python3 (the wheels of its venvs are fetched for it); None if unknown."""
        if image not in self._pythons:
            self._pythons[image] = None
            try:
                output = self.client.containers.run(
                    image, None, entrypoint=["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                    remove=True, network_mode="host")
            except Exception:
                return None
            text = (output or b"").decode(errors="replace").strip()
            self._pythons[image] = text if re.fullmatch(r"\d+\.\d+", text) else None
        return self._pythons[image]

    # -- containers ------------------------------------------------------------------------------

    def run(self, image: str, name: str, command: list[str], environment: dict[str, str],
            labels: dict[str, str]) -> Any:
        """Start a detached container on the host network (replacing one left over with the same name)."""
        self.remove(name)
        try:
            return self.client.containers.run(image, command=command, name=name, detach=True,
                                              network_mode="host", environment=environment,
                                              labels={LABEL: "1", **labels})
        except Exception as exc:
            raise ContainerError(f"could not start a container from {image}: {_short(exc)}") from None

    def serve(self, image: str, name: str, environment: dict[str, str], labels: dict[str, str],
              mounts: dict[str, str]) -> Any:
        """Start an image as it is (its own entrypoint and command) on the host network, detached, with
        host folders mounted read-only where it reads them ({host path: container path})."""
        self.remove(name)
        try:
            return self.client.containers.run(image, name=name, detach=True, network_mode="host",
                                              environment=environment, labels={LABEL: "1", **labels},
                                              volumes={h: {"bind": c, "mode": "ro"} for h, c in mounts.items()})
        except Exception as exc:
            raise ContainerError(f"could not start a container from {image}: {_short(exc)}") from None

    def run_to_end(self, image: str, command: str, workdir: Path, mounts: list[Path], environment: dict[str, str],
                   log: Path, timeout_s: int | None, labels: dict[str, str]) -> int | None:
        """Run `sh -c command` in a container until it ends (mounts at their own paths, host network),
        appending its output to log. The exit code, or None when it ran past timeout_s (then killed)."""
        try:
            container = self.client.containers.run(
                image, command=["/bin/sh", "-c", command], detach=True, network_mode="host",
                working_dir=str(workdir), environment=environment, labels={LABEL: "1", **labels},
                volumes={str(m): {"bind": str(m), "mode": "rw"} for m in mounts})
        except Exception as exc:
            raise ContainerError(f"could not start a container from {image}: {_short(exc)}") from None
        code: int | None = None
        try:
            try:
                code = int(container.wait(timeout=timeout_s).get("StatusCode", 1))
            except Exception:  # the wait timed out (or the engine went away): stop it, if it still runs
                with contextlib.suppress(Exception):
                    container.kill()
            with open(log, "ab") as out:
                out.write(container.logs(stdout=True, stderr=True))
        finally:
            with contextlib.suppress(Exception):  # already gone: nothing left to remove
                container.remove(force=True)
        return code

    def remove(self, name: str) -> None:
        docker = _docker()
        try:
            self.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if getattr(exc, "status_code", None) != 404:
                raise ContainerError(f"could not remove container {name}: {_short(exc)}") from None

    def labelled(self, labels: dict[str, str]) -> list[Any]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return list(self.client.containers.list(all=True, filters=filters))

    def state(self, container: Any) -> tuple[str, int | None]:
        """('running' | 'exited' | …, exit code when it has exited)."""
        container.reload()
        info = container.attrs.get("State") or {}
        return str(info.get("Status", "unknown")), info.get("ExitCode")

    def logs(self, container: Any, follow: bool = False) -> Iterator[bytes]:
        if follow:
            yield from container.logs(stream=True, follow=True, stdout=True, stderr=True)
        else:
            yield container.logs(stdout=True, stderr=True)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[-1][:400] if text else type(exc).__name__
