"""Hostile sizes and shapes: deep nesting, huge files, pathological globs, corrupt rows — a message, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.spec.globs import Glob
from tests.helpers import Result, write

Cli = Callable[..., Result]


def run(*argv: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A process of its own: a segmentation fault shows as a negative return code instead of killing pytest."""
    return subprocess.run([sys.executable, "-m", "mlops_gitops", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "MLOPS_GITOPS_RUNTIME": "none"})


DEEP = {"flow": "a: " + "[" * 30_000 + "]" * 30_000 + "\n",  # flow style: two bytes a level
        "block": "- " * 30_000 + "x\n",  # block sequences nested on one line
        "mappings": "a: " + "{b: " * 20_000 + "1" + "}" * 20_000 + "\n"}


@pytest.mark.parametrize("shape", list(DEEP))
def test_deep_nesting_is_a_diagnostic_in_every_entry_point(cli: Cli, example: Path, shape: str) -> None:
    """In-process (a segmentation fault would take its test worker down, and so fail it)."""
    (example / "models" / "deep.yml").write_text(DEEP[shape])
    for argv in (("validate", str(example), "--offline"), ("plan", str(example)),
                 ("validate", "--schema-only", str(example / "models" / "deep.yml"))):
        res = cli(*argv)
        assert res.code == 1, argv
        assert "models/deep.yml:1:" in res.out + res.err and "nesting deeper than 100" in res.out + res.err


@pytest.mark.slow
def test_the_pre_commit_hook_process_survives_deep_nesting(example: Path) -> None:
    (example / "models" / "deep.yml").write_text(DEEP["flow"])
    done = run("validate", "--schema-only", str(example / "models" / "deep.yml"))
    assert done.returncode == 1 and "nesting deeper than 100" in done.stdout  # not -11: no segmentation fault


@pytest.mark.slow
def test_deep_nesting_in_mlops_yaml_is_a_diagnostic(example: Path) -> None:
    (example / "mlops.yaml").write_text("policies: " + "[" * 30_000 + "]" * 30_000 + "\n")
    done = run("plan", str(example))
    assert done.returncode == 1 and "mlops.yaml:1:" in done.stderr and "nesting deeper than 100" in done.stderr


@pytest.mark.slow
def test_a_huge_yaml_file_is_refused_before_it_is_read(example: Path) -> None:
    big = example / "models" / "big.yml"
    with open(big, "w") as f:
        f.write("$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\ndescription: '")
        f.write("x" * (50 * 1024 * 1024))
        f.write("'\n")
    done = run("validate", str(example), "--offline")
    assert done.returncode == 1 and "models/big.yml:1:1: error YAML004" in done.stdout
    assert "limit is 4,194,304 bytes" in done.stdout


def test_globs_match_in_linear_time_and_as_before() -> None:
    assert not Glob("*" * 60 + "x").match("a" * 5000)  # minutes with a backtracking regex
    assert not Glob("*a" * 40 + "b").match("a" * 2000)
    cases = {"**/*.yml": ["a.yml", "x/y/a.yml"], "src/**": ["src/a", "src/a/b"], "data/[ab]?.csv": ["data/a1.csv"],
             "**/conda*.yml": ["conda.yml", "env/conda-gpu.yml"], "*.yaml": ["x.yaml"]}
    misses = {"**/*.yml": ["a.yaml"], "src/**": ["srcx/a"], "data/[ab]?.csv": ["data/c1.csv", "data/a/.csv"],
              "**/conda*.yml": ["conda/x.yml"], "*.yaml": ["d/x.yaml"]}
    for pattern, paths in cases.items():
        assert all(Glob(pattern).match(p) for p in paths), pattern
    for pattern, paths in misses.items():
        assert not any(Glob(pattern).match(p) for p in paths), pattern


@pytest.mark.slow
def test_a_pathological_include_glob_does_not_stall_discovery(example: Path) -> None:
    config = (example / "mlops.yaml").read_text().replace('include: ["**/*.yml", "**/*.yaml"]',
                                                          'include: ["**/*.yml", "' + "*" * 60 + '.none"]')
    (example / "mlops.yaml").write_text(config)
    write(example / ("a" * 200 + ".txt"), "not yaml\n")
    done = run("validate", str(example), "--offline", timeout=60)
    assert done.returncode == 0, done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000],
                         ids=["lists", "objects"])
def test_a_deeply_nested_plan_file_is_a_clear_error(tmp_path: Path, example: Path, content: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(content)
    done = run("apply", str(plan), cwd=example)
    assert done.returncode == 1 and "nesting deeper than 200" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_plan_file_that_is_a_fifo_is_refused_unread(example: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "plan.json")  # opening it for reading would wait for a writer forever
    done = run("apply", str(tmp_path / "plan.json"), cwd=example, timeout=60)
    assert done.returncode == 1 and "FIFO, not a regular file" in done.stderr


def test_json_depth_check_reports_where() -> None:
    from mlops_gitops import jsonload

    assert jsonload.loads('{"a": "[[[[[[[["}', limit=2) == {"a": "[[[[[[[["}  # brackets in strings do not count
    with pytest.raises(jsonload.JSONDepthError) as exc:
        jsonload.loads('{\n "a": [[[1]]]}', limit=3)
    assert (exc.value.line, exc.value.column) == (2, 9)
    assert json.loads("[[1]]") == jsonload.loads("[[1]]")


def test_a_corrupt_json_row_is_a_clear_error(cli: Cli, example: Path) -> None:
    import sqlite3

    assert cli("apply", str(example), "--auto-approve").code == 0
    with sqlite3.connect(example / ".mlops" / "dev" / "state.db") as conn:
        conn.execute("UPDATE mg_resources SET spec = '{not json' WHERE kind = 'model' AND name = 'cancer-onnx'")
    for argv in (("plan", str(example)), ("model", "list", "-C", str(example)),
                 ("state", "show", "-C", str(example))):
        res = cli(*argv)
        assert res.code == 1, argv
        assert "the workspace database is damaged" in res.err and "model:cancer-onnx:1" in res.err
        assert "Traceback" not in res.err and "Internal error" not in res.err


def apply_processes(repo: Path, n: int) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "none"}
    procs = [subprocess.Popen([sys.executable, "-m", "mlops_gitops", "apply", str(repo), "--auto-approve",
                               "--lock-timeout", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(n)]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


@pytest.mark.slow
def test_concurrent_first_applies_on_a_new_sqlite_workspace_wait_for_each_other(example: Path) -> None:
    from mlops_gitops.backends.local import LocalBackend

    results = apply_processes(example, 4)
    for r in results:
        assert r.returncode == 0, r.stderr
        assert "already exists" not in r.stderr
    assert sum("Nothing to do" in r.stdout for r in results) == 3
    assert LocalBackend(example / ".mlops" / "dev").read().serial == 14


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_first_applies_on_a_new_postgres_workspace_wait_for_each_other(example: Path) -> None:
    import uuid

    import psycopg

    from mlops_gitops.backends.local import LocalBackend

    name = f"mlops_test_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        write(example / "mlops.yaml", f"workspaces:\n  dev: {{path: .mlops/dev, database: '{url}'}}\n"
                                      "default_workspace: dev\nexclude: ['src/**', '**/conda*.yml', "
                                      "azure-pipelines.yml]\n")
        results = apply_processes(example, 4)
        for r in results:
            assert r.returncode == 0, r.stderr
        assert sum("Nothing to do" in r.stdout for r in results) == 3
        assert LocalBackend(example / ".mlops" / "dev", url).read().serial == 14
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_a_run_whose_process_was_killed_is_marked_interrupted(tmp_path: Path, cli: Cli) -> None:
    import signal
    import time

    from tests.pipeline_helpers import pipeline_tree

    root = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt", wait_for=str(tmp_path / "never"))
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "process"}
    proc = subprocess.Popen([sys.executable, "-m", "mlops_gitops", "job", "run", "pipelines/p.yml",
                             "--parallelism", "1"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "count.txt").exists():  # step a has started (it waits for a file nobody writes)
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    listed = json.loads(cli("job", "list", "--format", "json", cwd=root).out)
    assert [r["status"] for r in listed] == ["interrupted"]
    shown = json.loads(cli("job", "show", listed[0]["id"], "--format", "json", cwd=root).out)
    assert {s["step"]: s["status"] for s in shown["steps"]}["a"] == "interrupted"
    assert "ended before the run finished" in shown["message"]
