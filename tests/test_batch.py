"""Batch endpoints that run: `batch invoke` scores files in mini-batches as a job of the workspace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.backends.local import LocalBackend
from tests.helpers import AZ, EXAMPLE, Result, init_repo, write

SCRIPT = '''
import os, time
from pathlib import Path

MARKS = Path(os.environ["BATCH_MARKS"])

def init():
    (MARKS / f"init-{os.getpid()}").write_text("")

def run(mini_batch):
    out = []
    for f in mini_batch:
        name = Path(f).name
        if name.startswith("bad"):
            raise ValueError(f"cannot score {name}")
        if name.startswith("slow"):
            time.sleep(600)
        if "block" in name:
            (MARKS / "blocked").write_text("")
            while True:
                time.sleep(0.05)
        if name.startswith("short"):
            continue  # returns nothing for this file: Azure counts it as failed
        rows = Path(f).read_text().splitlines()
        out.append(f"{name},{len(rows) - 1},{os.getpid()}")
    return out
'''


def batch_tree(root: Path, script_settings: str = "", onnx_settings: str = "") -> Path:
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['src/**', 'inputs/**']\n")
    shutil.copytree(EXAMPLE / "models" / "cancer-onnx", root / "models" / "onnx")
    write(root / "models" / "onnx.yml", f"$schema: {AZ}/model.schema.json\nname: cancer-onnx\nversion: '1'\n"
                                        "path: ./onnx\n")
    write(root / "src" / "batch_score.py", SCRIPT)
    write(root / "endpoints" / "scores.yml", f"$schema: {AZ}/batchEndpoint.schema.json\nname: scores\n"
                                             "defaults: {deployment_name: onnx}\n")
    write(root / "deployments" / "onnx.yml", (
        f"$schema: {AZ}/modelBatchDeployment.schema.json\nname: onnx\nendpoint_name: scores\ntype: model\n"
        "model: azureml:cancer-onnx:1\nsettings:\n  mini_batch_size: 2\n" + onnx_settings))
    write(root / "deployments" / "script.yml", (
        f"$schema: {AZ}/modelBatchDeployment.schema.json\nname: script\nendpoint_name: scores\ntype: model\n"
        "model: azureml:cancer-onnx:1\ncode_configuration: {code: ../src, scoring_script: batch_score.py}\n"
        "resources: {instance_count: 1}\nsettings:\n  mini_batch_size: 1\n  max_concurrency_per_instance: 2\n"
        "  retry_settings: {max_retries: 1, timeout: 30}\n" + script_settings))
    return init_repo(root)


def samples(folder: Path, count: int = 3, rows: int = 5) -> Path:
    """CSV files of the example's features (30 columns, with a header), `rows` rows each."""
    lines = (EXAMPLE / "samples" / "batch" / "new-samples-1.csv").read_text().splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = lines[1 + i * rows: 1 + (i + 1) * rows]
        (folder / f"part-{i:02d}.csv").write_text("\n".join([lines[0], *body]) + "\n")
    return folder


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("BATCH_MARKS", str(folder))
    return folder


def applied(cli: Callable[..., Result], repo: Path) -> Path:
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 0, res.err
    return repo


def run_of(repo: Path, run_id: str) -> dict:
    backend = LocalBackend(repo / ".mlops" / "dev")
    try:
        from mlops_gitops.commands.jobs import describe_run

        return describe_run(backend.runs, run_id)
    finally:
        backend.close()


def last_run_id(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("Job "))


def test_onnx_deployment_scores_a_folder_as_a_recorded_job(cli: Callable[..., Result], tmp_path: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo"))
    inputs = samples(tmp_path / "in", count=3, rows=4)
    res = cli("batch", "invoke", "scores", "--input", str(inputs), "--output", str(tmp_path / "out"), cwd=repo)
    assert res.code == 0, res.err
    assert "3 of 3 file(s) scored, 0 failed, 12 row(s) written in 2 of 2 mini-batch(es)" in res.out
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    # row, prediction, file — in input order, every row of every file
    assert [(line.split(",")[0], line.split(",")[2]) for line in lines] == [
        (str(r), f"part-{i:02d}.csv") for i in range(3) for r in range(4)]
    assert {line.split(",")[1] for line in lines} <= {"0", "1"}
    run = run_of(repo, last_run_id(res.out))
    assert run["status"] == "completed" and run["pipeline"] == "scores"
    step = run["steps"][0]
    assert step["step"] == "batchscoring" and step["component"] == "batch-deployment:scores/onnx"
    assert step["inputs"]["input"]["data"] == str(inputs.resolve()) and len(step["inputs"]["input"]["sha256"]) == 64
    assert step["outputs"]["score"]["files"] == 1
    assert step["metrics"]["items_succeeded"] == 3 and step["metrics"]["rows_written"] == 12
    listed = cli("job", "list", cwd=repo)
    assert last_run_id(res.out) in listed.out


def test_scoring_script_gets_paths_init_once_per_worker_and_settings_overrides(
        cli: Callable[..., Result], tmp_path: Path, marks: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo"))
    inputs = samples(tmp_path / "in", count=6, rows=2)
    res = cli("batch", "invoke", "scores", "-d", "script", "--input", str(inputs), "--output", str(tmp_path / "out"),
              cwd=repo)
    assert res.code == 0, res.err
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines] == [[f"part-{i:02d}.csv", "2"] for i in range(6)]
    inits = sorted(p.name for p in marks.glob("init-*"))
    assert len(inits) == 2  # max_concurrency_per_instance 2 x instance_count 1 workers, init() once each
    assert {f"init-{line.split(',')[2]}" for line in lines} <= set(inits)
    for p in marks.glob("init-*"):
        p.unlink()
    res = cli("batch", "invoke", "scores", "-d", "script", "--input", str(inputs), "--set", "mini_batch_size=3",
              "--set", "max_concurrency_per_instance=1", "--set", "output_file_name=scores.txt",
              "--output", str(tmp_path / "out2"), cwd=repo)
    assert res.code == 0, res.err
    assert "in 2 of 2 mini-batch(es)" in res.out
    assert len(list(marks.glob("init-*"))) == 1
    assert len((tmp_path / "out2" / "scores.txt").read_text().splitlines()) == 6
    settings = run_of(repo, last_run_id(res.out))
    assert settings["steps"][0]["metrics"]["mini_batches"] == 2


def test_failures_count_against_error_threshold(cli: Callable[..., Result], tmp_path: Path, marks: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo", script_settings="  error_threshold: -1\n"))
    inputs = samples(tmp_path / "in", count=3, rows=2)
    shutil.copy(inputs / "part-00.csv", inputs / "bad-1.csv")
    shutil.copy(inputs / "part-00.csv", inputs / "short-1.csv")
    res = cli("batch", "invoke", "scores", "-d", "script", "--input", str(inputs), cwd=repo)
    assert res.code == 0, res.err  # -1: failures are counted, never fatal
    assert "3 of 5 file(s) scored, 2 failed" in res.out
    logs = cli("job", "logs", last_run_id(res.out), cwd=repo)
    assert "run() raised ValueError: cannot score bad-1.csv" in logs.out
    assert "try 2 of 2" in logs.out  # retried once (max_retries 1)
    assert "returned 0 element(s) for 1 file(s)" in logs.out
    res = cli("batch", "invoke", "scores", "-d", "script", "--input", str(inputs), "--set", "error_threshold=1",
              cwd=repo)
    assert res.code == 1
    assert "error_threshold 1 exceeded: 2 item(s) failed" in res.err
    run = run_of(repo, last_run_id(res.out))
    assert run["status"] == "failed" and run["steps"][0]["status"] == "failed"
    assert run["steps"][0]["outputs"]["score"]["files"] == 1  # what it scored before failing is kept


def test_a_mini_batch_past_its_timeout_is_killed_and_retried(cli: Callable[..., Result], tmp_path: Path,
                                                            marks: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo"))
    inputs = samples(tmp_path / "in", count=2, rows=2)
    shutil.copy(inputs / "part-00.csv", inputs / "slow.csv")
    res = cli("batch", "invoke", "scores", "-d", "script", "--input", str(inputs), "--set", "timeout=1",
              "--set", "max_retries=1", "--set", "error_threshold=0", cwd=repo)
    assert res.code == 1
    assert "error_threshold 0 exceeded: 1 item(s) failed" in res.err
    logs = cli("job", "logs", last_run_id(res.out), cwd=repo).out
    assert logs.count("timed out after 1 s") == 2  # the first try and its one retry
    # the killed workers were replaced: init() ran again for the retry
    assert len(list(marks.glob("init-*"))) >= 3


def test_summary_only_writes_no_predictions(cli: Callable[..., Result], tmp_path: Path, marks: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo"))
    inputs = samples(tmp_path / "in", count=2, rows=2)
    res = cli("batch", "invoke", "scores", "-d", "script", "--input", str(inputs), "--set",
              "output_action=summary_only", cwd=repo)
    assert res.code == 0, res.err
    assert "2 of 2 file(s) scored, 0 failed, 0 row(s) written" in res.out
    run = run_of(repo, last_run_id(res.out))
    assert run["steps"][0]["outputs"]["score"]["files"] == 0


def test_cancel_stops_the_workers_and_keeps_partial_results(cli: Callable[..., Result], tmp_path: Path,
                                                           marks: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo"))
    inputs = samples(tmp_path / "in", count=2, rows=2)
    shutil.copy(inputs / "part-00.csv", inputs / "zz-block.csv")  # sorted last: the parts are scored first
    proc = subprocess.Popen([sys.executable, "-m", "mlops_gitops", "batch", "invoke", "scores", "-d", "script",
                             "--input", str(inputs), "--set", "max_concurrency_per_instance=1"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MLOPS_GITOPS_PROGRESS": "off"})
    deadline = time.monotonic() + 60
    while not (marks / "blocked").exists():  # the script says it reached the blocking file
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    listed = json.loads(cli("job", "list", "--format", "json", cwd=repo).out)
    run_id = listed[0]["id"]
    assert listed[0]["status"] == "running"
    res = cli("job", "cancel", run_id, cwd=repo)
    assert res.code == 0, res.err
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "cancelled" in out and "partial output kept" in out
    run = run_of(repo, run_id)
    assert run["status"] == "cancelled"
    assert run["steps"][0]["metrics"]["partial"] is True
    assert run["steps"][0]["metrics"]["items_succeeded"] == 2
    predictions = (repo / ".mlops" / "dev" / "runs" / run_id / "batchscoring" / "outputs" / "score" /
                   "predictions.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in predictions] == ["part-00.csv", "part-01.csv"]


def test_data_asset_input_and_bad_inputs(cli: Callable[..., Result], tmp_path: Path) -> None:
    repo = batch_tree(tmp_path / "repo")
    samples(repo / "data" / "new", count=2, rows=3)
    write(repo / "data" / "new.yml", f"$schema: {AZ}/data.schema.json\nname: new-samples\nversion: '1'\n"
                                     "type: uri_folder\npath: ./new\n")
    applied(cli, init_repo(repo))
    res = cli("batch", "invoke", "scores", "--input", "azureml:new-samples@latest", cwd=repo)
    assert res.code == 0, res.err
    run = run_of(repo, last_run_id(res.out))
    assert run["steps"][0]["inputs"]["input"]["data"] == "data:new-samples:1"
    predictions = (repo / ".mlops" / "dev" / "runs" / run["id"] / "batchscoring" / "outputs" / "score" /
                   "predictions.csv").read_text().splitlines()
    assert {line.rsplit(",", 1)[1] for line in predictions} == {"part-00.csv", "part-01.csv"}  # names, not hashes
    lineage = cli("lineage", "data:new-samples:1", "--format", "json", cwd=repo)
    assert lineage.code == 0, lineage.err
    graph = json.loads(lineage.out)
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert ("data:new-samples:1", f"run:{run['id']}") in edges  # data -> batch job -> predictions
    assert (f"run:{run['id']}", f"output:{run['id']}/score") in edges
    around_run = json.loads(cli("lineage", f"run:{run['id']}", "--format", "json", cwd=repo).out)
    assert ("batch-deployment:scores/onnx", f"run:{run['id']}") in {(e["from"], e["to"]) for e in around_run["edges"]}

    (tmp_path / "empty").mkdir()
    cases = {
        str(tmp_path / "missing"): "no such file or folder",
        str(tmp_path / "empty"): "the folder is empty",
        "azureml:nothing:1": "data asset nothing:1 is not registered",
    }
    before = len(json.loads(cli("job", "list", "--format", "json", cwd=repo).out))
    for given, message in cases.items():
        res = cli("batch", "invoke", "scores", "--input", given, cwd=repo)
        assert res.code == 1 and message in res.err, (given, res.err)
        assert "Traceback" not in res.err
    assert len(json.loads(cli("job", "list", "--format", "json", cwd=repo).out)) == before  # nothing recorded
    res = cli("batch", "invoke", "nope", "--input", str(repo / "data" / "new"), cwd=repo)
    assert res.code == 1 and "batch endpoint 'nope' does not exist" in res.err
    res = cli("batch", "invoke", "scores", "-d", "other", "--input", str(repo / "data" / "new"), cwd=repo)
    assert res.code == 1 and "has no deployment 'other' (its deployments: onnx, script)" in res.err
    res = cli("batch", "invoke", "scores", "--input", str(repo / "data" / "new"), "--set", "mini_batch_size=0",
              cwd=repo)
    assert res.code == 1 and "mini_batch_size" in res.err


def test_wrong_columns_fail_the_job_with_the_reason(cli: Callable[..., Result], tmp_path: Path) -> None:
    repo = applied(cli, batch_tree(tmp_path / "repo"))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "narrow.csv").write_text("a,b\n1,2\n")
    res = cli("batch", "invoke", "scores", "--input", str(folder), "--set", "max_retries=0", "--set",
              "error_threshold=0", cwd=repo)
    assert res.code == 1
    logs = cli("job", "logs", last_run_id(res.out), cwd=repo).out
    assert "narrow.csv has 2 column(s); the model's input 'X' takes 30" in logs


COUNT = '''
import argparse, pathlib
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--suffix"); p.add_argument("--out"); p.add_argument("--count")
a = p.parse_args()
with open(a.count, "a") as f:
    f.write("ran\\n")
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
names = sorted(p.name for p in pathlib.Path(a.data).iterdir())
(out / "files.txt").write_text("\\n".join(n + a.suffix for n in names) + "\\n")
'''


def test_pipeline_deployment_runs_its_component_as_a_pipeline_job(cli: Callable[..., Result], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    counter = tmp_path / "count.txt"
    batch_tree(repo)
    write(repo / "src" / "count" / "count.py", COUNT)
    write(repo / "environments" / "py.yml", f"$schema: {AZ}/environment.schema.json\nname: py\n"
                                            "image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
                                            "conda_file: ./conda.yml\n")  # Python alone: a quick environment
    write(repo / "environments" / "conda.yml", "name: py\ndependencies:\n  - python=3.11\n")
    write(repo / "components" / "count.yml", (
        f"$schema: {AZ}/commandComponent.schema.json\nname: count_files\nversion: '1'\ntype: command\n"
        "code: ../src/count\nenvironment: azureml:py@latest\n"
        "inputs:\n  data: {type: uri_folder}\n  suffix: {type: string, default: ''}\n"
        "outputs:\n  out: {type: uri_folder}\n"
        "command: python count.py --data ${{inputs.data}} --suffix '${{inputs.suffix}}' --out ${{outputs.out}} "
        f"--count {counter}\n"))
    write(repo / "components" / "scoring.yml", (
        f"$schema: {AZ}/pipelineComponent.schema.json\nname: scoring_pipeline\nversion: '1'\ntype: pipeline\n"
        "inputs:\n  data: {type: uri_folder}\n  suffix: {type: string, default: ''}\n"
        "outputs:\n  listing: {type: uri_folder}\njobs:\n  count:\n    component: azureml:count_files:1\n"
        "    inputs:\n      data: ${{parent.inputs.data}}\n      suffix: ${{parent.inputs.suffix}}\n"
        "    outputs:\n      out: ${{parent.outputs.listing}}\n"))
    write(repo / "deployments" / "pipeline.yml", (
        f"$schema: {AZ}/pipelineComponentBatchDeployment.schema.json\nname: listing\nendpoint_name: scores\n"
        "type: pipeline\ncomponent: azureml:scoring_pipeline:1\nsettings: {continue_on_step_failure: false}\n"))
    applied(cli, init_repo(repo))
    inputs = samples(tmp_path / "in", count=2, rows=1)
    res = cli("batch", "invoke", "scores", "-d", "listing", "--input", str(inputs), "--output", str(tmp_path / "out"),
              cwd=repo)
    assert res.code == 0, res.err
    assert (tmp_path / "out" / "listing" / "files.txt").read_text().split() == ["part-00.csv", "part-01.csv"]
    run = run_of(repo, last_run_id(res.out))
    assert run["pipeline"] == "scores" and [s["step"] for s in run["steps"]] == ["count"]
    # the same input again: the step is reused, as in any pipeline run
    again = cli("batch", "invoke", "scores", "-d", "listing", "--input", f"data={inputs}", cwd=repo)
    assert again.code == 0, again.err
    assert run_of(repo, last_run_id(again.out))["steps"][0]["status"] == "reused"
    assert counter.read_text().split() == ["ran"]
    literal = cli("batch", "invoke", "scores", "-d", "listing", "--input", str(inputs), "--input", "suffix=.seen",
                  "--output", str(tmp_path / "out3"), cwd=repo)
    assert literal.code == 0, literal.err
    assert (tmp_path / "out3" / "listing" / "files.txt").read_text().split() == ["part-00.csv.seen", "part-01.csv.seen"]
    bad = cli("batch", "invoke", "scores", "-d", "listing", "--input", "nope=1", cwd=repo)
    assert bad.code == 1 and "give NAME=VALUE, NAME one of the component's inputs (data, suffix)" in bad.err


ENTRY = '''
import argparse, os
from pathlib import Path

def init():
    global suffix
    p = argparse.ArgumentParser()
    p.add_argument("--suffix")
    suffix = p.parse_known_args()[0].suffix  # program_arguments, as Azure passes them
    Path(os.environ["BATCH_MARKS"], f"init-{os.getpid()}").write_text("")

def run(mini_batch):
    if any("bad" in f for f in mini_batch):
        raise ValueError("a bad file")
    return [f"{Path(f).name}{suffix},{len(Path(f).read_text().splitlines())}" for f in mini_batch]
'''


def parallel_tree(root: Path, extra: str = "") -> Path:
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['src/**']\n")
    write(root / "src" / "par" / "entry.py", ENTRY)
    for i in range(5):
        write(root / "pipelines" / "files" / f"f{i}.txt", "x\n" * (i + 1))
    write(root / "pipelines" / "par.yml", (
        f"$schema: {AZ}/pipelineJob.schema.json\ntype: pipeline\nname: par\n"
        "inputs:\n  files: {type: uri_folder, path: ./files}\n"
        "outputs:\n  scored: {type: uri_folder}\njobs:\n  score:\n    type: parallel\n"
        "    inputs:\n      data: {type: uri_folder, path: '${{parent.inputs.files}}'}\n      suffix: '_seen'\n"
        "    outputs:\n      scored: '${{parent.outputs.scored}}'\n"
        "    input_data: ${{inputs.data}}\n    mini_batch_size: '2'\n    max_concurrency_per_instance: 2\n"
        "    resources: {instance_count: 1}\n    retry_settings: {max_retries: 0, timeout: 30}\n" + extra +
        "    task:\n      type: run_function\n      code: ../src/par\n      entry_script: entry.py\n"
        "      program_arguments: --suffix ${{inputs.suffix}}\n      append_row_to: ${{outputs.scored}}\n"))
    return init_repo(root)


def test_parallel_steps_run_on_the_mini_batch_engine(cli: Callable[..., Result], tmp_path: Path, marks: Path) -> None:
    repo = parallel_tree(tmp_path / "repo")
    res = cli("validate", cwd=repo)
    assert res.code == 0 and "STEP001" not in res.out + res.err, res.out + res.err
    res = cli("job", "run", "pipelines/par.yml", cwd=repo)
    assert res.code == 0, res.out + res.err
    run_id = next(line.split()[1] for line in res.out.splitlines() if line.startswith("Run "))
    out = repo / ".mlops" / "dev" / "runs" / run_id / "score" / "outputs" / "scored" / "parallel_run_step.txt"
    assert out.read_text().splitlines() == [f"f{i}.txt_seen,{i + 1}" for i in range(5)]
    assert len(list(marks.glob("init-*"))) == 2  # two workers, init() once each
    logs = cli("job", "logs", run_id, cwd=repo).out
    assert "5 file(s) in 3 mini-batch(es)" in logs
    again = cli("job", "run", "pipelines/par.yml", cwd=repo)
    assert again.code == 0 and "score: reused" in again.out


def test_a_parallel_step_over_its_mini_batch_error_threshold_fails(cli: Callable[..., Result], tmp_path: Path,
                                                                 marks: Path) -> None:
    repo = tmp_path / "repo"
    parallel_tree(repo, extra="    mini_batch_error_threshold: 0\n")
    write(repo / "pipelines" / "files" / "bad.txt", "oops\n")
    init_repo(repo)
    res = cli("job", "run", "pipelines/par.yml", cwd=repo)
    assert res.code == 1
    assert "mini_batch_error_threshold 0 exceeded: 1 mini-batch(es) failed" in res.out + res.err


def test_azures_rest_invocation_starts_a_job_through_the_endpoint_host(cli: Callable[..., Result], tmp_path: Path,
                                                                       marks: Path, monkeypatch: pytest.MonkeyPatch
                                                                       ) -> None:
    import httpx

    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    from tests.serving_helpers import stop_host

    repo = batch_tree(tmp_path / "repo")
    samples(repo / "data" / "new", count=2, rows=2)
    write(repo / "data" / "new.yml", f"$schema: {AZ}/data.schema.json\nname: new-samples\nversion: '1'\n"
                                     "type: uri_folder\npath: ./new\n")
    applied(cli, init_repo(repo))
    ws = repo / ".mlops" / "dev"
    try:
        assert cli("serve", cwd=repo).code == 0
        info = json.loads((ws / "host.json").read_text())
        keys = json.loads(cli("endpoint", "get-credentials", "scores", cwd=repo).out)
        body = {"properties": {"InputData": {"input_data": {"JobInputType": "UriFolder",
                                                            "Uri": "azureml:new-samples:1"}}}}
        port = info["url"].rsplit(":", 1)[1]
        with httpx.Client(base_url=info["url"], timeout=30) as client:
            # as Azure's clients call it: the endpoint's own host name (here <endpoint>.localhost), POST /jobs
            host = {"host": f"scores.localhost:{port}"}
            auth = {"authorization": f"Bearer {keys['primaryKey']}"}
            started = client.post("/jobs", json=body, headers={**host, **auth})
            assert started.status_code == 200, started.text
            job = started.json()["name"]
            assert started.json()["properties"]["status"] == "Queued"
            deadline = time.monotonic() + 120
            while True:  # polled as Azure's clients poll a job, until it ends
                state = client.get(f"/jobs/{job}", headers={**host, **auth})
                assert state.status_code == 200, state.text
                if state.json()["properties"]["status"] not in ("Queued", "Running"):
                    break
                assert time.monotonic() < deadline, state.json()
                time.sleep(0.1)
            assert state.json()["properties"]["status"] == "Completed", state.json()
            assert state.json()["properties"]["outputs"]["score"]["files"] == 1
            run = run_of(repo, job)
            assert run["steps"][0]["metrics"]["items_succeeded"] == 2
            # the path form, a pinned deployment, and the refusals
            pinned = client.post("/batch-endpoints/scores/jobs", json=body,
                                 headers={**auth, "azureml-model-deployment": "script"})
            assert pinned.status_code == 200, pinned.text
            assert client.post("/jobs", json=body, headers={**host, "authorization": "Bearer wrong"}).status_code == 401
            assert client.post("/jobs", json=body, headers=host).status_code == 401
            assert client.post("/batch-endpoints/nope/jobs", json=body, headers=auth).status_code == 404
            assert client.post("/jobs", json={"properties": {}}, headers={**host, **auth}).status_code == 400
            local = {"properties": {"InputData": {"d": {"JobInputType": "UriFolder", "Uri": "/etc"}}}}
            answer = client.post("/jobs", json=local, headers={**host, **auth})  # a key opens no local files
            assert answer.status_code == 400 and "not a path on the host" in answer.text
            missing = {"properties": {"InputData": {"d": {"JobInputType": "UriFolder", "Uri": "azureml:nothing:1"}}}}
            refused = client.post("/jobs", json=missing, headers={**host, **auth}).json()["name"]
            deadline = time.monotonic() + 60
            while (status := client.get(f"/jobs/{refused}", headers={**host, **auth}).json())["properties"][
                    "status"] in ("Queued", "Running"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert status["properties"]["status"] == "Failed"
            assert "data asset nothing:1 is not registered" in status["properties"]["error"]
    finally:
        stop_host(ws)
