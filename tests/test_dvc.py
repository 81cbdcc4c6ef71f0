"""DVC-tracked data assets, against real DVC repositories with a local-folder remote."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.apply.planning import plan_read_only
from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.commands.apply import apply
from mlops_gitops.spec.project import open_project
from tests.helpers import AZ, commit_all, git, write
from tests.pipeline_helpers import pipeline_tree

pytestmark = pytest.mark.slow


def dvc(repo: Path, *args: str) -> None:
    """DVC's own command line, in this process (a `dvc` process costs seconds of imports each time)."""
    from dvc.cli import main

    here = Path.cwd()
    os.chdir(repo)
    try:
        assert main(list(args)) == 0, f"dvc {' '.join(args)} failed"
    finally:
        os.chdir(here)


def md5_of(dvc_file: Path) -> str:
    from ruamel.yaml import YAML

    return str(YAML(typ="safe").load(dvc_file.read_text())["outs"][0]["md5"])


@pytest.fixture
def tracked_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pipeline tree, with its data under DVC and pushed to a local remote."""
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    root = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt")
    dvc(root, "init", "-q")
    git(root, "rm", "-q", "--cached", "data/rows.csv")
    dvc(root, "add", "-q", "data/rows.csv")
    dvc(root, "remote", "add", "-q", "-d", "storage", str(tmp_path / "remote"))
    dvc(root, "push", "-q")
    commit_all(root, "Track the data with DVC")
    return root


def test_a_dvc_tracked_data_asset_is_versioned_by_its_dvc_hash(tracked_repo: Path) -> None:
    md5 = md5_of(tracked_repo / "data" / "rows.csv.dvc")
    planned = plan_read_only(open_project(tracked_repo), None).plan
    data = next(c for c in planned.changes if c.address == Address(Kind.DATA, "rows", "1"))
    assert f"dvc md5:{md5[:12]}" in str([f.after for f in data.fields])
    assert apply(str(tracked_repo), auto_approve=True) == 0
    row = LocalBackend(tracked_repo / ".mlops" / "dev").get(Address(Kind.DATA, "rows", "1"))
    assert row is not None and row.provenance["dvc"] == {"path": {"md5": md5, "path": "data/rows.csv"}}
    assert [f.rel for f in row.files] == ["rows.csv"]


def test_the_plan_from_a_subfolder_is_the_plan_from_the_root(tracked_repo: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from_root = plan_read_only(open_project(tracked_repo), None).plan
    assert apply(str(tracked_repo), auto_approve=True) == 0
    monkeypatch.chdir(tracked_repo / "data")  # DVC reads relative paths against the cwd
    from_sub = plan_read_only(open_project("."), None).plan
    data = [c for c in from_root.changes if c.address.kind == Kind.DATA]
    assert data and "dvc md5:" in str([f.after for f in data[0].fields])
    assert [c.action.value for c in from_sub.changes if c.address.kind == Kind.DATA] == ["no-op"]
    assert apply(".", auto_approve=True) == 0
    resources = LocalBackend(tracked_repo / ".mlops" / "dev").read().resources
    assert [a for a in resources if a.kind == Kind.DATA] == [Address(Kind.DATA, "rows", "1")]


def test_data_missing_from_the_working_tree_is_fetched_from_the_dvc_remote(tracked_repo: Path,
                                                                            tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(tracked_repo), str(clone))
    assert not (clone / "data" / "rows.csv").exists(), "the data is not in Git"
    assert apply(str(clone), auto_approve=True) == 0
    row = LocalBackend(clone / ".mlops" / "dev").get(Address(Kind.DATA, "rows", "1"))
    assert row is not None and (clone / "data" / "rows.csv").read_text().startswith("row0")
    stored = LocalBackend(clone / ".mlops" / "dev").artifact_path(row.files[0].sha256).read_text()
    assert stored == (tracked_repo / "data" / "rows.csv").read_text()


def test_data_in_no_remote_fails_clearly_and_registers_nothing(tracked_repo: Path, tmp_path: Path,
                                                               cli: object) -> None:
    write(tracked_repo / "data" / "rows.csv", "only-here\n")
    dvc(tracked_repo, "add", "-q", "data/rows.csv")  # recorded but never pushed
    commit_all(tracked_repo, "New data, not pushed")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(tracked_repo), str(clone))
    result = cli("apply", "--auto-approve", cwd=clone)  # type: ignore[operator]
    assert result.code == 1 and "DVC could not fetch data/rows.csv" in result.err and "Traceback" not in result.err
    backend = LocalBackend(clone / ".mlops" / "dev")
    assert backend.get(Address(Kind.DATA, "rows", "1")) is None and backend.get(Address(Kind.JOB, "demo")) is None


def test_data_changed_after_dvc_add_is_an_error_with_the_fix(tracked_repo: Path, cli: object) -> None:
    (tracked_repo / "data" / "rows.csv").write_text("edited without dvc add\n")
    result = cli("plan", str(tracked_repo))  # type: ignore[operator]
    assert result.code == 1 and "DVC002" in result.err and "dvc add data/rows.csv" in result.err


def test_new_training_data_in_a_commit_runs_the_pipeline_and_registers_a_model(tracked_repo: Path,
                                                                              cli: object) -> None:
    write(tracked_repo / "models" / "counts.yml", f"$schema: {AZ}/model.schema.json\nname: counts\n"
                                                  "path: azureml://jobs/demo/outputs/result\n")
    commit_all(tracked_repo, "Register the pipeline's result")
    assert apply(str(tracked_repo), auto_approve=True) == 0

    write(tracked_repo / "data" / "rows.csv", "".join(f"fresh{i}\n" for i in range(10)))
    dvc(tracked_repo, "add", "-q", "data/rows.csv")
    dvc(tracked_repo, "push", "-q")
    commit = commit_all(tracked_repo, "Fresh training data", author="Grace Hopper <grace@example.com>")
    new_md5 = md5_of(tracked_repo / "data" / "rows.csv.dvc")
    planned = plan_read_only(open_project(tracked_repo), None).plan
    assert [(str(c.address), c.action.value) for c in planned.actionable] == [
        ("data:rows:2", "create"), ("job:demo", "run"), ("model:counts:2", "create")]
    assert apply(str(tracked_repo), auto_approve=True) == 0

    backend = LocalBackend(tracked_repo / ".mlops" / "dev")
    model = backend.get(Address(Kind.MODEL, "counts", "2"))
    data = backend.get(Address(Kind.DATA, "rows", "2"))
    assert model is not None and data is not None
    assert model.provenance["git.commit"] == commit and model.provenance["git.author"].startswith("Grace Hopper")
    assert data.provenance["dvc"]["path"]["md5"] == new_md5
    run = json.loads(cli("job", "show", model.provenance["run.id"], "--format", "json", cwd=tracked_repo).out)  # type: ignore[operator]
    step_a = next(s for s in run["steps"] if s["step"] == "a")
    assert step_a["inputs"]["raw"]["data"] == "data:rows:2" and run["git"]["commit"] == commit

    graph = json.loads(cli("lineage", "model:counts", "--format", "json", cwd=tracked_repo).out)  # type: ignore[operator]
    assert graph["root"] == "model:counts:2"
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    run_node = f"run:{model.provenance['run.id']}"
    assert (run_node, "model:counts:2") in edges and ("data:rows:2", run_node) in edges
    assert (f"dvc:{new_md5}", "data:rows:2") in edges and (f"commit:{commit}", "model:counts:2") in edges
    commit_node = next(n for n in graph["nodes"] if n["id"] == f"commit:{commit}")
    assert commit_node["author"].startswith("Grace Hopper")
    text = cli("lineage", "data:rows:2", cwd=tracked_repo).out  # type: ignore[operator]
    assert "-> produced: model:counts:2" in text.split("downstream")[1]
    mermaid = cli("lineage", "model:counts:2", "--format", "mermaid", cwd=tracked_repo).out  # type: ignore[operator]
    assert mermaid.startswith("flowchart LR") and "-->|produced|" in mermaid
    dot = cli("lineage", "model:counts:2", "--format", "dot", cwd=tracked_repo).out  # type: ignore[operator]
    assert dot.startswith("digraph lineage {") and '[label="produced"]' in dot
    shutil.rmtree(tracked_repo / ".mlops")


def test_dvcs_answers_are_kept_and_follow_the_record_and_the_file(tracked_repo: Path) -> None:
    from mlops_gitops.vcs import dvc as facts

    data = tracked_repo / "data" / "rows.csv"
    first = facts.tracked(data)
    assert first is not None and first.md5 == md5_of(tracked_repo / "data" / "rows.csv.dvc")
    cache = tracked_repo / ".dvc" / "tmp" / facts.CACHE_FILE
    entries = json.loads(cache.read_text())["entries"]
    assert [v["md5"] for k, v in entries.items() if k.startswith("record:")] == [first.md5]
    # The next answer comes from the cache, not from DVC: an entry edited by hand is what comes back.
    key = next(k for k in entries if k.startswith("record:"))
    cache.write_text(json.dumps({"entries": {key: {**entries[key], "md5": "0" * 32}}}))
    assert facts.tracked(data) == facts.Tracked(first.repo_root, first.rel, "0" * 32, first.size, first.nfiles)
    cache.write_text(json.dumps({"entries": entries}))
    os.utime(data, (1_000_000_000, 1_000_000_000))  # old enough to be cached: not racy
    assert facts.matches(first, data)
    assert any(k.startswith("file:data/rows.csv:") for k in json.loads(cache.read_text())["entries"])
    # The data changes (size and mtime move): the cached "matches" no longer applies.
    data.write_text(data.read_text() + "9,9\n")
    os.utime(data, (1_000_000_100, 1_000_000_100))
    assert not facts.matches(first, data)
    # `dvc add` writes a new record: the key changes, DVC is asked again and answers with the new hash.
    dvc(tracked_repo, "add", "-q", "data/rows.csv")
    second = facts.tracked(data)
    assert second is not None and second.md5 == md5_of(tracked_repo / "data" / "rows.csv.dvc") != first.md5
    assert facts.matches(second, data)
