"""The published pre-commit hooks, through a real `pre-commit try-repo` against this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import AZ, REPO_ROOT, init_repo, write

pytestmark = pytest.mark.slow


def try_repo(repo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """Both hooks of this checkout on the files (try-repo installs them into a fresh store each time)."""
    exe = shutil.which("pre-commit")
    assert exe is not None, "pre-commit is a test dependency"
    env = {**os.environ, "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([exe, "try-repo", str(REPO_ROOT), "--files", *files], cwd=repo, env=env,
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


def test_good_files_pass_both_hooks(user_repo: Path) -> None:
    res = try_repo(user_repo, "ml/models/m.yml", "ml/endpoints/e.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mlops-gitops validate" in res.stdout and "mlops-gitops schemas" in res.stdout
    assert "Failed" not in res.stdout


def test_bad_files_are_blocked_with_file_line_messages(user_repo: Path) -> None:
    write(user_repo / "ml" / "deployments" / "d.yml",
          f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\nendpoint_name: ep1\n"
          "model: azureml:missing:1\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n"
          "code_configuration: {code: ./src, scoring_script: score.py}\n")
    write(user_repo / "ml" / "models" / "bad.yml", f"$schema: {AZ}/model.schema.json\nname: bad\npath: [1, 2]\n")
    write(user_repo / "README.yml", "not: a resource\n")  # outside the tree: the schema hook leaves it alone
    res = try_repo(user_repo, "ml/deployments/d.yml", "ml/models/bad.yml", "README.yml")
    assert res.returncode == 1
    # the whole-tree hook: references are checked against the rest of the tree (the endpoint is found); an
    # asset the tree lacks may be in the workspace, which a hook does not read, so it only warns
    assert "deployments/d.yml:4:1: warning REF001: model 'azureml:missing:1' is not in the tree" in res.stdout
    assert "deployments/d.yml:7:" in res.stdout and "error REF002: path './src' does not exist" in res.stdout
    assert "REF004" not in res.stdout
    # the schema-only hook: types, with the line of the value
    assert "bad.yml:3:1: error SCHEMA010: path: [1, 2] is not of type 'string'" in res.stdout
    assert res.stdout.count("Failed") == 2
    schemas_part = res.stdout.split("mlops-gitops schemas")[1].split("mlops-gitops validate")[0]
    assert "README.yml" not in schemas_part and "1 error(s)" in schemas_part
