"""The published pre-commit hooks, through a real `pre-commit try-repo` against this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import AZ, REPO_ROOT, init_repo, write

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hook environment for the session: the first run installs this package into it."""
    return tmp_path_factory.mktemp("pre-commit-home")


def try_repo(repo: Path, home: Path, hook: str, *files: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("pre-commit")
    assert exe is not None, "pre-commit is a test dependency"
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([exe, "try-repo", str(REPO_ROOT), hook, "--files", *files], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    root = tmp_path / "user"
    write(root / "ml" / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev}\ndefault_workspace: dev\n")
    write(root / "ml" / "models" / "m.yml", f"$schema: {AZ}/model.schema.json\nname: m\npath: ./m.onnx\n")
    (root / "ml" / "models" / "m.onnx").write_bytes(b"onnx")
    write(root / "ml" / "endpoints" / "e.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: ep1\n"
                                               "auth_mode: key\n")
    return init_repo(root, "A tree")


def test_validate_hook_blocks_a_dangling_reference_and_passes_a_good_file(user_repo: Path,
                                                                          pre_commit_home: Path) -> None:
    good = try_repo(user_repo, pre_commit_home, "mlops-gitops-validate", "ml/models/m.yml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "mlops-gitops validate" in good.stdout and "Passed" in good.stdout
    write(user_repo / "ml" / "deployments" / "d.yml",
          f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\nendpoint_name: ep1\n"
          "model: azureml:missing:1\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n")
    bad = try_repo(user_repo, pre_commit_home, "mlops-gitops-validate", "ml/deployments/d.yml")
    assert bad.returncode == 1
    assert "deployments/d.yml:4:1: error REF001: model 'azureml:missing:1' not found" in bad.stdout
    assert "1 error(s)" in bad.stdout, "the endpoint it names is found in the rest of the tree"
    assert "Failed" in bad.stdout


def test_schemas_hook_checks_types_with_lines(user_repo: Path, pre_commit_home: Path) -> None:
    write(user_repo / "ml" / "models" / "bad.yml", f"$schema: {AZ}/model.schema.json\nname: bad\npath: [1, 2]\n")
    write(user_repo / "ml" / "other.yml", "not: a resource\n")  # not ours: left alone
    res = try_repo(user_repo, pre_commit_home, "mlops-gitops-schemas", "ml/models/bad.yml", "ml/other.yml")
    assert res.returncode == 1
    assert "bad.yml:3:1: error SCHEMA010: path: [1, 2] is not of type 'string'" in res.stdout
    ok = try_repo(user_repo, pre_commit_home, "mlops-gitops-schemas", "ml/models/m.yml", "ml/other.yml")
    assert ok.returncode == 0, ok.stdout
