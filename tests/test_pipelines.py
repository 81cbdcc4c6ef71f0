"""Pipeline jobs run for real: processes in their environment, reuse like dvc repro, records per run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.apply.planning import plan_read_only
from mlops_gitops.commands.apply import apply
from mlops_gitops.commands.jobs import describe_run
from mlops_gitops.plan.model import Action
from mlops_gitops.spec.project import open_project
from tests.helpers import Result, commit_all, write
from tests.pipeline_helpers import executed, pipeline_tree

Cli = Callable[..., Result]
pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    return pipeline_tree(tmp_path / "repo", tmp_path / "count.txt")


def runs(cli: Cli, root: Path) -> list[dict[str, str]]:
    res = cli("job", "list", "--format", "json", cwd=root)
    assert res.code == 0, res.err
    data: list[dict[str, str]] = json.loads(res.out)
    return data


def show(cli: Cli, root: Path, run_id: str) -> dict[str, object]:
    res = cli("job", "show", run_id, "--format", "json", cwd=root)
    assert res.code == 0, res.err
    data: dict[str, object] = json.loads(res.out)
    return data


def statuses(info: dict[str, object]) -> dict[str, str]:
    return {s["step"]: s["status"] for s in info["steps"]}  # type: ignore[attr-defined,index]


def test_job_run_runs_steps_in_order_then_reuses_them(repo: Path, cli: Cli, tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    res = cli("job", "run", "pipelines/p.yml", cwd=repo)
    assert res.code == 0, res.err
    assert sorted(executed(counter)) == ["a", "b", "c"] and executed(counter).index("a") < executed(counter).index("b")
    first = runs(cli, repo)[0]
    info = show(cli, repo, first["id"])
    assert info["status"] == "completed" and statuses(info) == {"a": "completed", "b": "completed", "c": "completed"}
    steps = {s["step"]: s for s in info["steps"]}  # type: ignore[attr-defined]
    assert steps["b"]["metrics"] == {"rows": 4, "flag": "none"}, "n=4 from the pipeline, flag's section dropped"
    assert steps["a"]["inputs"]["raw"]["data"] == "data:rows:1"
    assert steps["a"]["environment"]["requirements"] == []
    assert info["git"]["commit"] and info["git"]["author"].startswith("Ada Lovelace")  # type: ignore[index]
    assert info["outputs"]["result"]["sha256"] == steps["b"]["outputs"]["result"]["sha256"]  # type: ignore[index]
    text = cli("job", "show", first["id"], cwd=repo).out
    assert "metric rows: 4" in text and "step a: completed" in text
    logs = cli("job", "logs", first["id"], "--step", "a", cwd=repo)
    assert "a wrote 4 rows" in logs.out

    again = cli("job", "run", "pipelines/p.yml", cwd=repo)
    assert again.code == 0 and len(executed(counter)) == 3, "nothing ran the second time"
    second = show(cli, repo, runs(cli, repo)[0]["id"])
    assert statuses(second) == {"a": "reused", "b": "reused", "c": "reused"}
    assert second["outputs"] == info["outputs"]
    assert "reused the outputs of" in cli("job", "logs", str(second["id"]), "--step", "b", cwd=repo).out

    forced = cli("job", "run", "pipelines/p.yml", "--force-rerun", cwd=repo)
    assert forced.code == 0 and len(executed(counter)) == 6


def test_plan_says_which_steps_run_and_apply_runs_only_those(repo: Path, cli: Cli, tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    planned = plan_read_only(open_project(repo), None).plan
    job = next(c for c in planned.changes if c.address.kind.value == "job")
    assert job.action is Action.RUN and [s["action"] for s in job.steps] == ["run", "run", "run"]
    assert apply(str(repo), auto_approve=True) == 0 and len(executed(counter)) == 3
    assert not plan_read_only(open_project(repo), None).plan.has_changes

    write(repo / "src" / "b" / "b.py", (repo / "src" / "b" / "b.py").read_text().replace('"rows"', '"row_count"'))
    commit_all(repo, "Rename the metric")
    planned = plan_read_only(open_project(repo), None).plan
    job = next(c for c in planned.changes if c.address.kind.value == "job")
    by_step = {s["step"]: s for s in job.steps}
    assert job.action is Action.RUN and "step(s) run" in job.reason
    assert by_step["a"]["action"] == "reuse" and by_step["c"]["action"] == "reuse"
    assert by_step["b"]["action"] == "run" and "step_b:1 -> component:step_b:2" in by_step["b"]["reason"]
    rendered = cli("plan", str(repo)).out
    assert "> step b: run" in rendered and "= step a: reuse" in rendered and "1 to run" in rendered

    assert apply(str(repo), auto_approve=True) == 0
    assert executed(counter)[3:] == ["b"], "only the changed step ran"
    latest = show(cli, repo, runs(cli, repo)[0]["id"])
    assert statuses(latest) == {"a": "reused", "b": "completed", "c": "reused"}
    assert next(s for s in latest["steps"] if s["step"] == "b")["metrics"]["row_count"] == 4  # type: ignore[attr-defined]

    write(repo / "data" / "rows.csv", "".join(f"new{i}\n" for i in range(10)))
    commit_all(repo, "New data")
    job = next(c for c in plan_read_only(open_project(repo), None).plan.changes if c.address.kind.value == "job")
    by_step = {s["step"]: s for s in job.steps}
    assert by_step["a"]["reason"] == "input raw: data:rows:1 -> data:rows:2"
    assert by_step["b"]["action"] == "run" and by_step["b"]["reason"].startswith("after a")


def test_a_failed_step_stops_its_dependents_and_the_rerun_continues(repo: Path, cli: Cli, tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    broken = (repo / "src" / "b" / "b.py").read_text()
    write(repo / "src" / "b" / "b.py", broken.replace("rows = ", "raise SystemExit('b cannot read its data')\nrows = "))
    commit_all(repo, "Break b")
    res = cli("job", "run", "pipelines/p.yml", cwd=repo)
    assert res.code == 1 and "b cannot read its data" in res.err and "Traceback" not in res.err
    info = show(cli, repo, runs(cli, repo)[0]["id"])
    assert info["status"] == "failed" and statuses(info) == {"a": "completed", "b": "failed", "c": "completed"}
    step_b = next(s for s in info["steps"] if s["step"] == "b")  # type: ignore[attr-defined]
    assert step_b["exit_code"] == 1 and "b cannot read its data" in step_b["message"]
    assert info["outputs"] == {}, "no pipeline output from a failed run"
    assert apply(str(repo), auto_approve=True) == 1, "apply reports the failed run"

    write(repo / "src" / "b" / "b.py", broken)
    commit_all(repo, "Fix b")
    assert cli("job", "run", "pipelines/p.yml", cwd=repo).code == 0
    assert executed(counter)[-1] == "b" and executed(counter).count("a") == 1, "a and c were reused"


def test_independent_steps_run_at_the_same_time(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "c-ran"
    root = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt", wait_for=str(marker))
    res = cli("job", "run", "pipelines/p.yml", "--parallelism", "2", cwd=root)
    assert res.code == 0, res.err + res.out  # a waits for the file c writes: only concurrency lets it finish


def test_cancel_stops_the_running_step_and_what_has_not_started(tmp_path: Path, cli: Cli) -> None:
    marker = tmp_path / "never"  # a waits for a file nobody writes; parallelism 1 keeps c queued behind it
    root = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt", wait_for=str(marker))
    from mlops_gitops.commands.jobs import job_cancel, job_run

    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(job_run("pipelines/p.yml", str(root), parallelism=1)))
    monkey_cwd = Path.cwd()
    try:
        import os

        os.chdir(root)
        thread.start()
        from mlops_gitops.backends.local import LocalBackend

        backend = LocalBackend(root / ".mlops" / "dev")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # the run's own thread prints to the same captured stdout: read the runs from the store
            ids = []
            if backend.has_state():
                with backend.store.engine.connect() as conn:
                    ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM mg_runs")]
            if ids and any(s["status"] == "running" for s in describe_run(backend.runs, ids[0])["steps"]):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no step started")
        assert job_cancel(ids[0], str(root)) == 0
        thread.join(60)
    finally:
        os.chdir(monkey_cwd)
    assert result == [1]
    info = describe_run(backend.runs, ids[0])
    assert info["status"] == "cancelled"
    assert {s["step"]: s["status"] for s in info["steps"]}["a"] == "cancelled"
    assert "c" not in executed(tmp_path / "count.txt")


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace("data: ${{parent.jobs.a.outputs.out}}", "data: ${{parent.jobs.b.outputs.result}}"),
     "BIND004"),
    (lambda t: t.replace("${{parent.jobs.a.outputs.out}}", "${{parent.jobs.a.outputs.nothing}}"),
     "step 'a' has no output 'nothing'"),
    (lambda t: t.replace("n: ${{parent.inputs.n}}", "n: ${{parent.jobs.c.outputs.done}}"),
     "input 'n' is integer but output 'done' of step 'c' is uri_folder"),
    (lambda t: t.replace("n: 4", "n: four"), "input 'n' is integer but got 'four'"),
])
def test_bad_pipelines_are_refused_before_anything_runs(repo: Path, cli: Cli, tmp_path: Path,
                                                        change: Callable[[str], str], message: str) -> None:
    path = repo / "pipelines" / "p.yml"
    path.write_text(change(path.read_text()))
    res = cli("job", "run", "pipelines/p.yml", cwd=repo)
    assert res.code == 1 and message in res.err and "Traceback" not in res.err
    assert executed(tmp_path / "count.txt") == []
    assert runs(cli, repo) == [], "no run is recorded for a pipeline that cannot run"


def test_a_model_made_by_the_pipeline_gets_a_version_per_changed_run(repo: Path, cli: Cli, tmp_path: Path) -> None:
    from mlops_gitops.addresses import Address, Kind
    from mlops_gitops.backends.local import LocalBackend
    from tests.helpers import AZ

    write(repo / "models" / "counts.yml", f"$schema: {AZ}/model.schema.json\nname: counts\n"
                                         "path: azureml://jobs/demo/outputs/result\n")
    commit_all(repo, "Register what the pipeline makes")
    planned = plan_read_only(open_project(repo), None).plan
    model = next(c for c in planned.changes if c.address.kind is Kind.MODEL)
    assert model.address == Address(Kind.MODEL, "counts", "1") and "run of job:demo" in model.reason
    assert Address(Kind.JOB, "demo") in model.depends_on
    assert apply(str(repo), auto_approve=True) == 0
    backend = LocalBackend(repo / ".mlops" / "dev")
    first = backend.get(Address(Kind.MODEL, "counts", "1"))
    assert first is not None and [f.rel for f in first.files] == ["first.txt", "metrics.json"]
    assert first.provenance["run.id"] == runs(cli, repo)[0]["id"]
    assert first.provenance["run.metrics"] == {"rows": 4, "flag": "none"}
    assert not plan_read_only(open_project(repo), None).plan.has_changes

    write(repo / "pipelines" / "p.yml", (repo / "pipelines" / "p.yml").read_text().replace("n: 4", "n: 6"))
    commit_all(repo, "Use six rows")
    planned = plan_read_only(open_project(repo), None).plan
    assert [str(c.address) for c in planned.actionable] == ["job:demo", "model:counts:2"]
    assert apply(str(repo), auto_approve=True) == 0
    second = backend.get(Address(Kind.MODEL, "counts", "2"))
    assert second is not None and second.provenance["run.metrics"]["rows"] == 6
    shown = json.loads(cli("model", "show", "counts:2", cwd=repo).out)
    assert shown["properties"]["metrics.rows"] == 6 and shown["properties"]["run_id"] == runs(cli, repo)[0]["id"]

    # step a's code changes but not what it writes: the job runs, the model keeps its version
    write(repo / "src" / "a" / "a.py", "# a comment changes the code, not the output\n" +
          (repo / "src" / "a" / "a.py").read_text())
    commit_all(repo, "Comment a.py")
    planned = plan_read_only(open_project(repo), None).plan
    assert [str(c.address) for c in planned.actionable] == ["component:step_a:2", "job:demo", "model:counts:3"]
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 0, res.err
    assert "model:counts:3: unchanged: the run reproduced the files of model:counts:2" in res.out
    assert "Resources: 1 added" in res.out, "the new component version only"
    assert backend.get(Address(Kind.MODEL, "counts", "3")) is None
    assert not plan_read_only(open_project(repo), None).plan.has_changes


def test_a_job_output_reference_must_name_a_job_and_an_output(repo: Path, cli: Cli) -> None:
    from tests.helpers import AZ

    write(repo / "models" / "bad.yml", f"$schema: {AZ}/model.schema.json\nname: bad\n"
                                      "path: azureml://jobs/demo/outputs/nothing/paths/model\n")
    res = cli("validate", cwd=repo)
    assert res.code == 1 and "REF007" in res.out and "job 'demo' has no output 'nothing'" in res.out


def test_lineage_of_a_model_shows_the_deployments_that_serve_it(example: Path, cli: Cli) -> None:
    assert apply(str(example), auto_approve=True) == 0  # runtime none: recorded, not served
    text = cli("lineage", "model:cancer-onnx:1", cwd=example).out
    downstream = text.split("downstream")[1]
    assert "online-deployment:cancer/blue" in downstream and "traffic: 90%" in downstream
    assert "-> serves: online-endpoint:cancer" in downstream
    missing = cli("lineage", "model:nothing:1", cwd=example)
    assert missing.code == 1 and "model:nothing:1 is not in this workspace" in missing.err


def test_metrics_diff_compares_the_runs_at_two_commits(repo: Path, cli: Cli) -> None:
    assert cli("job", "run", "pipelines/p.yml", cwd=repo).code == 0
    write(repo / "pipelines" / "p.yml", (repo / "pipelines" / "p.yml").read_text().replace("n: 4", "n: 6"))
    commit_all(repo, "Six rows")
    missing = cli("metrics", "diff", "HEAD~1", "HEAD", cwd=repo)
    assert missing.code == 1 and "no completed run at HEAD" in missing.err
    assert cli("job", "run", "pipelines/p.yml", cwd=repo).code == 0
    res = cli("metrics", "diff", "HEAD~1", "HEAD", "--format", "json", cwd=repo)
    assert res.code == 0, res.err
    rows = {r["metric"]: r for r in json.loads(res.out)["metrics"]}
    assert rows == {"demo.b.rows": {"metric": "demo.b.rows", "old": 4, "new": 6, "change": 2}}
    text = cli("metrics", "diff", "HEAD~1", cwd=repo).out
    assert "demo.b.rows" in text and "flag" not in text, "unchanged metrics only with --all"
    assert "demo.b.flag" in cli("metrics", "diff", "HEAD~1", "--all", cwd=repo).out
    assert cli("metrics", "diff", "no-such-rev", cwd=repo).code == 1


def test_a_command_job_runs_as_one_step_and_is_reused(repo: Path, cli: Cli, tmp_path: Path) -> None:
    from tests.helpers import AZ

    counter = tmp_path / "count.txt"
    write(repo / "jobs" / "single.yml", f"""
        $schema: {AZ}/commandJob.schema.json
        type: command
        name: single
        code: ../src/a
        environment: azureml:py@latest
        command: >-
          python a.py --raw ${{{{inputs.raw}}}} --n ${{{{inputs.n}}}}
          --out ${{{{outputs.out}}}} --count {counter}
        inputs:
          raw:
            type: uri_file
            path: azureml:rows@latest
          n: 2
        outputs:
          out: {{type: uri_folder}}
        """)
    commit_all(repo, "A command job")
    assert cli("job", "run", "jobs/single.yml", cwd=repo).code == 0
    assert cli("job", "run", "jobs/single.yml", cwd=repo).code == 0
    assert executed(counter) == ["a"], "the second run reused the first"
    info = show(cli, repo, runs(cli, repo)[0]["id"])
    assert statuses(info) == {"main": "reused"} and "out" in info["outputs"]  # type: ignore[operator]
