"""Conda dependencies as PyPI requirements, so that a conda file installs into a virtual environment.

Conda's match specs differ from PEP 508: `numpy=1.2` is any 1.2.x (`numpy==1.2.*`), `numpy 1.2.*` puts
the version after a space, a third `=` part is a build string (dropped: wheels have none), and a channel
may prefix the name (`conda-forge::numpy`). A few packages are named differently on PyPI (a small table);
some are native libraries or conda's own tooling with no PyPI equivalent (dropped, and reported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# conda name -> PyPI name, where they differ
PYPI_NAMES = {
    "pytorch": "torch", "pytorch-cpu": "torch", "py-xgboost": "xgboost", "py-xgboost-cpu": "xgboost",
    "pytables": "tables", "matplotlib-base": "matplotlib", "msgpack-python": "msgpack",
    "tensorflow-base": "tensorflow", "tensorflow-cpu": "tensorflow-cpu", "py-opencv": "opencv-python",
    "opencv": "opencv-python", "pyqt": "PyQt5", "libxgboost": "xgboost", "python-graphviz": "graphviz",
    "ruamel_yaml": "ruamel.yaml",
    "typing_extensions": "typing-extensions", "importlib_metadata": "importlib-metadata",
}
# conda packages with no PyPI counterpart: native libraries, toolchains and conda's own plumbing
NO_PYPI = frozenset({
    "cudatoolkit", "cuda-toolkit", "cudnn", "nccl", "cuda-version", "cuda-runtime", "cuda-nvcc", "pytorch-cuda",
    "pytorch-mutex", "libgcc-ng", "libgcc", "libstdcxx-ng", "libgomp", "_libgcc_mutex", "_openmp_mutex",
    "ld_impl_linux-64", "mkl", "mkl-include", "mkl_fft", "mkl_random", "blas", "libblas", "liblapack",
    "libcblas", "openblas", "libopenblas", "ca-certificates", "certifi-conda", "openssl", "zlib", "libzlib",
    "libffi", "readline", "sqlite", "tk", "xz", "ncurses", "bzip2", "libuuid", "libnsl", "libxcrypt",
    "conda", "conda-build", "anaconda", "nomkl", "cpuonly", "libuv", "icu", "libiconv", "libxml2", "git",
    "nodejs", "cmake", "make", "gcc", "gxx", "gfortran", "tzdata", "libedit", "expat", "libsqlite",
})
_SPEC = re.compile(r"^(?:[A-Za-z0-9_.\-]+::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$")
_OPERATOR = re.compile(r"^(==|>=|<=|!=|~=|>|<)")


@dataclass(frozen=True)
class Translated:
    requirements: tuple[str, ...]  # PEP 508, in the file's order (pip: entries included)
    python: str | None  # the Python the file asks for, as a specifier ("==3.10.*", ">=3.9"), if any
    dropped: tuple[str, ...] = field(default=())  # conda entries with no PyPI equivalent
    renamed: tuple[tuple[str, str], ...] = field(default=())  # (conda name, PyPI name)


def _version(rest: str) -> str:
    """The version part of a conda spec as a PEP 440 specifier ('' for any version)."""
    rest = rest.strip().strip("[]")
    if not rest:
        return ""
    if " " in rest and not _OPERATOR.match(rest):  # "1.2.* py311_0": version, then a build string
        rest = rest.split()[0]
    if rest.startswith("=") and not rest.startswith("=="):  # "=1.2" or "=1.2=build": a fuzzy prefix
        version = rest[1:].split("=", 1)[0]
        return f"=={version.rstrip('.*')}.*" if version else ""
    parts = []
    for part in rest.replace(" ", "").split(","):
        if not part:
            continue
        if _OPERATOR.match(part):
            part = re.sub(r"^(==[^=]+)=.*$", r"\1", part)  # "==1.2.3=py311_0": the build string goes
            parts.append(part)
        else:  # a bare version: "1.2.3" exactly, "1.2.*" any 1.2
            parts.append(f"=={part}")
    return ",".join(parts)


def translate_spec(spec: str) -> tuple[str, str] | None:
    """(conda name, PEP 508 requirement) of one conda dependency, or None when it is not understood."""
    m = _SPEC.match(spec.strip())
    if m is None:
        return None
    name, rest = m.group("name"), m.group("rest")
    if "=" in name:  # no space before a single '=': "numpy=1.2" splits here
        name, _, tail = name.partition("=")
        rest = "=" + tail + rest
    pypi = PYPI_NAMES.get(name.lower(), name)
    return name, pypi + _version(rest)


def translate(conda: dict[str, Any]) -> Translated:
    reqs: list[str] = []
    dropped: list[str] = []
    renamed: list[tuple[str, str]] = []
    python = None
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            reqs.extend(str(r) for r in dep["pip"] or [])
            continue
        if not isinstance(dep, str):
            continue
        found = translate_spec(dep)
        if found is None:
            dropped.append(dep)
            continue
        name, requirement = found
        lowered = name.lower()
        if lowered == "python":
            python = requirement[len(name):] or None
        elif lowered in ("pip", "setuptools", "wheel"):
            continue  # the virtual environment brings its own
        elif lowered in NO_PYPI:
            dropped.append(dep)
        else:
            if PYPI_NAMES.get(lowered, name) != name:
                renamed.append((name, PYPI_NAMES[lowered]))
            reqs.append(requirement)
    return Translated(tuple(reqs), python, tuple(dropped), tuple(renamed))
