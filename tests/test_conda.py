"""Conda files install into virtual environments: specs translated to PyPI requirements, the Python they ask
for found (or the nearest, said once), environments built in place with uv and usable as they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_gitops.runtime.conda import translate, translate_spec
from mlops_gitops.runtime.envs import ResolvedEnv, choose_python, ensure_env, resolve_conda


@pytest.mark.parametrize(("spec", "requirement"), [
    ("numpy=2.3.1", "numpy==2.3.1.*"),  # conda's '=' is a prefix: any 2.3.1.x
    ("numpy=1.2", "numpy==1.2.*"),
    ("numpy=1.2.*", "numpy==1.2.*"),
    ("numpy==1.26.4", "numpy==1.26.4"),
    ("numpy==1.26.4=py311h64a7726_0", "numpy==1.26.4"),  # build strings have no PyPI meaning
    ("numpy=1.26.4=py311h64a7726_0", "numpy==1.26.4.*"),
    ("numpy 1.26.*", "numpy==1.26.*"),
    ("numpy 1.26.4 py311_0", "numpy==1.26.4"),
    ("numpy>=1.24,<2", "numpy>=1.24,<2"),
    ("numpy >=1.24", "numpy>=1.24"),
    ("conda-forge::pandas>=2", "pandas>=2"),
    ("scikit-learn", "scikit-learn"),
    ("pytorch=2.1", "torch==2.1.*"),
    ("py-xgboost>=1.7", "xgboost>=1.7"),
    ("pytables", "tables"),
    ("matplotlib-base=3.8", "matplotlib==3.8.*"),
])
def test_conda_specs_become_pypi_requirements(spec: str, requirement: str) -> None:
    found = translate_spec(spec)
    assert found is not None and found[1] == requirement


def test_a_conda_file_keeps_pip_entries_and_reports_only_what_has_no_pypi_equivalent() -> None:
    found = translate({"name": "x", "channels": ["conda-forge"], "dependencies": [
        "python=3.10", "pip", "setuptools", "numpy=2.3.1", "mkl", "cudatoolkit=11.8", "pytorch",
        {"pip": ["requests>=2.31", "azureml-mlflow"]}, 42]})
    assert found.requirements == ("numpy==2.3.1.*", "torch", "requests>=2.31", "azureml-mlflow")
    assert found.python == "==3.10.*"
    assert found.dropped == ("mkl", "cudatoolkit=11.8")
    assert found.renamed == (("pytorch", "torch"),)


def test_the_python_asked_for_is_used_when_this_one_fits_and_the_nearest_otherwise() -> None:
    here = sys.version_info
    fits = choose_python(f"=={here[0]}.{here[1]}.*")
    assert fits.path == sys.executable and fits.note == ""
    missing = choose_python("==3.99.*")  # no such Python anywhere
    assert missing.version[:2] != (3, 99) and "3.99" in missing.note and "nearest" in missing.note
    assert choose_python(None).path == sys.executable


@pytest.mark.slow
def test_a_conda_file_with_conda_only_entries_builds_an_environment_that_imports_them(tmp_path: Path) -> None:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    resolved = resolve_conda({"dependencies": [f"python={here}", "pip", "six=1.16", "libgcc-ng",
                                               {"pip": ["idna>=3"]}]})
    assert resolved.requirements == ("six==1.16.*", "idna>=3") and resolved.skipped == ("libgcc-ng",)
    said: list[str] = []
    python = ensure_env(tmp_path / "envs", resolved, log=said.append, label="environment demo:1")
    out = subprocess.run([str(python), "-c", "import six, idna; print(six.__version__)"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("1.16")
    assert any("environment demo:1" in line and "libgcc-ng" in line for line in said), said
    assert any(line.startswith("  built environment demo:1 (") for line in said), said
    env = python.parent.parent
    assert env.parent == tmp_path / "envs" and (env / ".complete").exists()
    assert [p.name for p in (tmp_path / "envs").iterdir() if p.name.startswith(".build-")] == []
    # every script in bin/ names this environment's interpreter, and runs
    scripts = [p for p in (env / "bin").iterdir() if p.is_file() and p.read_bytes().startswith(b"#!")]
    assert scripts
    for script in scripts:
        shebang = script.read_text().splitlines()[0]
        assert str(env) in shebang or "/bin/sh" in shebang, (script, shebang)
    pip = env / "bin" / "pip"
    assert subprocess.run([str(pip), "--version"], capture_output=True, text=True).returncode == 0
    # a second use takes the complete environment without building
    said.clear()
    assert ensure_env(tmp_path / "envs", resolved, log=said.append) == python and said == []


@pytest.mark.slow
def test_a_failed_build_leaves_nothing_a_later_run_would_take_as_complete(tmp_path: Path) -> None:
    resolved = ResolvedEnv(("this-package-does-not-exist-mlops-gitops==0.0.1",), None)
    with pytest.raises(Exception, match="could not install"):
        ensure_env(tmp_path / "envs", resolved, log=lambda _: None)
    assert not (tmp_path / "envs" / resolved.digest).exists()


@pytest.mark.slow
def test_callers_that_share_one_build_hear_of_it_once(tmp_path: Path) -> None:
    """Deployments built in parallel wait for one build: `built` (the environment.built event) fires once."""
    import threading

    resolved = ResolvedEnv((), None)
    built: list[str] = []
    start = threading.Barrier(3)
    pythons: list[Path] = []

    def use(who: str) -> None:
        start.wait()
        pythons.append(ensure_env(tmp_path / "envs", resolved, log=lambda _: None,
                                  built=lambda: built.append(who)))

    threads = [threading.Thread(target=use, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pythons)) == 1 and len(pythons) == 3
    assert len(built) == 1
    ensure_env(tmp_path / "envs", resolved, log=lambda _: None, built=lambda: built.append("later"))
    assert len(built) == 1  # a complete environment is not built again
