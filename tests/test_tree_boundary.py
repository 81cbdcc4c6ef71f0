"""The tree is the folder given (holding mlops.yaml); paths in its files may lead anywhere inside the Git
work tree that holds it, as Azure's examples do; nameless jobs are known by their path in the tree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mlops_gitops.spec.resource import job_name_from_path
from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]


def repo_with_tree_in_a_subfolder(root: Path) -> Path:
    write(root / "model-1" / "model" / "sklearn_regression_model.pkl", "weights\n")
    tree = root / "cli"
    write(tree / "mlops.yaml", "default_workspace: dev\nworkspaces:\n  dev: {path: .mlops/dev}\n")
    write(tree / "endpoints" / "online" / "managed" / "sample" / "model.yml",
          f"$schema: {AZ}/model.schema.json\nname: regression\nversion: '1'\npath: ../../../../../model-1/model/\n")
    init_repo(root, "Azure's layout: the model beside the tree")
    return tree


def test_paths_may_leave_the_tree_but_not_the_git_work_tree(cli: Cli, tmp_path: Path) -> None:
    tree = repo_with_tree_in_a_subfolder(tmp_path / "repo")
    res = cli("plan", str(tree), "--format", "json")
    assert res.code == 0, res.err
    plan = json.loads(res.out)
    assert [c["address"] for c in plan["resource_changes"]] == ["model:regression:1"]
    assert cli("apply", str(tree), "--auto-approve").code == 0
    res = cli("model", "download", "regression:1", "--dir", str(tmp_path / "dl"), "-C", str(tree))
    assert res.code == 0, res.err
    assert next((tmp_path / "dl").rglob("sklearn_regression_model.pkl")).read_text() == "weights\n"

    outside = tree / "endpoints" / "online" / "managed" / "sample" / "model.yml"
    write(tmp_path / "elsewhere" / "w.bin", "not in the repository")
    outside.write_text(outside.read_text().replace("../../../../../model-1/model/", "../../../../../../elsewhere/"))
    res = cli("validate", str(tree))
    assert res.code == 1 and "REF003" in res.out + res.err and "outside the Git work tree" in res.out + res.err


def test_nameless_jobs_are_known_by_their_path_in_the_tree(cli: Cli, tmp_path: Path) -> None:
    for folder in ("hello-world", "goodbye"):
        write(tmp_path / "jobs" / "basics" / folder / "job.yml",
              f"$schema: {AZ}/commandJob.schema.json\ncommand: echo {folder}\nenvironment: {{image: python}}\n")
    init_repo(tmp_path, "Two job.yml files")
    res = cli("plan", str(tmp_path), "--format", "json")
    assert res.code == 0, res.err
    assert sorted(c["address"] for c in json.loads(res.out)["resource_changes"]) == [
        "job:jobs-basics-goodbye-job", "job:jobs-basics-hello-world-job"]
    assert job_name_from_path("jobs/basics/hello-world.yml") == "jobs-basics-hello-world"
    assert job_name_from_path("my jobs/1st run.yaml") == "my-jobs-1st-run"
