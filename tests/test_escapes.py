"""Names never become paths out of their folder; command inputs never become shell code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.fsutil import UnsafePathError, safe_join
from mlops_gitops.runtime.pipelines.steps import Pipeline, PipelineError, Step, render_command
from tests.helpers import AZ, Result, init_repo, write

Cli = Callable[..., Result]


def command_job(root: Path, command: str, inputs: str, outputs: str = "  out: {type: uri_folder}",
                name: str = "demo") -> Path:
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['src/**', conda.yml]\n")
    write(root / "src" / "keep.txt", "code folder\n")
    write(root / "conda.yml", "name: py\ndependencies:\n  - python=3.11\n")
    write(root / "jobs" / "job.yml", f"$schema: {AZ}/commandJob.schema.json\ntype: command\nname: {name}\n"
                                     "code: ../src\nenvironment:\n  image: python:3.11\n  conda_file: ../conda.yml\n"
                                     f"inputs:\n{inputs}\noutputs:\n{outputs}\ncommand: |\n  {command}\n")
    return init_repo(root)


@pytest.mark.parametrize(("yaml_name", "code", "line"), [
    ("'../../../../victim'", "NAME003", 23),
    ("'a/b'", "NAME003", 23),
    ("Train", "NAME003", 23),
])
def test_unsafe_step_names_are_invalid_with_their_position(cli: Cli, tmp_path: Path, yaml_name: str, code: str,
                                                           line: int) -> None:
    from tests.pipeline_helpers import pipeline_tree

    root = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt")
    text = (root / "pipelines" / "p.yml").read_text().replace("\n  c:\n", f"\n  {yaml_name}:\n")
    (root / "pipelines" / "p.yml").write_text(text)
    res = cli("validate", str(root), "--offline")
    assert res.code == 1
    assert f"pipelines/p.yml:{line}:3: error {code}" in res.out, res.out


@pytest.mark.parametrize("port", ["'../../x'", "'a b'", "'x/y'"])
def test_unsafe_input_and_output_names_are_invalid(cli: Cli, tmp_path: Path, port: str) -> None:
    root = command_job(tmp_path / "repo", "echo hi", "  n: 1", outputs=f"  {port}: {{type: uri_folder}}")
    res = cli("validate", str(root), "--offline")
    assert res.code == 1 and "jobs/job.yml:11:3: error NAME004" in res.out, res.out


def test_port_names_equal_ignoring_case_collide(cli: Cli, tmp_path: Path) -> None:
    root = command_job(tmp_path / "repo", "echo hi", "  Data: 1\n  data: 2")
    res = cli("validate", str(root), "--offline")
    assert res.code == 1 and "NAME004" in res.out and "equal ignoring case" in res.out


def test_the_runner_refuses_a_step_name_that_leaves_the_run(tmp_path: Path) -> None:
    """Even a pipeline that never passed validate (built in code) cannot make the runner touch a folder outside."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    pipeline = Pipeline("p", {"../../victim": Step("../../victim", "true")})
    with pytest.raises(PipelineError, match="would leave its folder"):
        pipeline.order()
    pipeline = Pipeline("p", {"a": Step("a", "true", outputs={"../../x": "uri_folder"})})
    with pytest.raises(PipelineError, match="not a valid input or output name"):
        pipeline.order()
    assert (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("part", ["..", "../x", "a/../../b", "/etc/passwd", "", "a\\..\\b", "x\x00"])
def test_safe_join_refuses_what_leaves_the_parent(tmp_path: Path, part: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, part)


def test_safe_join_refuses_a_link_that_points_outside(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "out").symlink_to(tmp_path.parent)
    with pytest.raises(UnsafePathError, match="resolves outside"):
        safe_join(tmp_path / "inside", "out", "x")
    assert safe_join(tmp_path, "inside", "y") == tmp_path / "inside" / "y"


def test_endpoint_logs_refuse_names_that_are_paths(cli: Cli, example: Path) -> None:
    secret = example / ".mlops" / "dev" / "secret.log"
    secret.parent.mkdir(parents=True)
    secret.write_text("do not print\n")
    res = cli("endpoint", "logs", "cancer", "--deployment", "../../secret", "-C", str(example))
    assert res.code == 1 and "do not print" not in res.out and "would leave its folder" in res.err


HOSTILE = ["$(touch PWNED)", "`touch PWNED`", "\"; touch PWNED; echo \"", "'; touch PWNED; echo '",
           "a\nb; touch PWNED", "${HOME}", "$'\\x41'"]


@pytest.mark.parametrize("template", [
    "printf '%s' ${{inputs.msg}}",
    "printf '%s' \"${{inputs.msg}}\"",
    "printf '%s' \"pre ${{inputs.msg}} post\"",
    "printf '%s' 'pre ${{inputs.msg}} post'",
    "printf '%s' pre${{inputs.msg}}post",
])
@pytest.mark.parametrize("value", HOSTILE)
def test_no_quoting_context_executes_an_input(tmp_path: Path, template: str, value: str) -> None:
    bound = render_command(template, {"inputs.msg": value})
    assert bound.env == {"AZURE_ML_INPUT_msg": value}
    done = subprocess.run(["/bin/sh", "-c", bound.command], cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                          **bound.env}, capture_output=True, text=True, check=True)
    expected = {"printf '%s' ${{inputs.msg}}": value,
                "printf '%s' \"${{inputs.msg}}\"": value,
                "printf '%s' \"pre ${{inputs.msg}} post\"": f"pre {value} post",
                "printf '%s' 'pre ${{inputs.msg}} post'": f"pre {value} post",
                "printf '%s' pre${{inputs.msg}}post": f"pre{value}post"}[template]
    assert done.stdout == expected
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.slow
def test_a_job_passes_hostile_literals_through_untouched(cli: Cli, tmp_path: Path) -> None:
    value = "$(touch PWNED) `touch PWNED` \"quoted\" 'single'"
    root = command_job(tmp_path / "repo", 'printf "%s" "${{inputs.msg}}" > ${{outputs.out}}/m.txt; '
                                          "test \"$AZURE_ML_INPUT_msg\" = \"$(cat ${{outputs.out}}/m.txt)\"",
                       "  msg: " + json.dumps(value))
    res = cli("job", "run", "jobs/job.yml", cwd=root)
    assert res.code == 0, res.out + res.err
    outputs = list((root / ".mlops" / "dev" / "runs").glob("*/*/outputs/out/m.txt"))
    assert len(outputs) == 1 and outputs[0].read_text() == value
    assert not list(root.rglob("PWNED")) and not list(tmp_path.rglob("PWNED"))


# -- links and special files -------------------------------------------------------------------------


def run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """In a process of its own, with a deadline: the probes below hung or exhausted memory before."""
    env = {**os.environ, "MLOPS_GITOPS_RUNTIME": "none"}
    return subprocess.run([sys.executable, "-m", "mlops_gitops", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize(("target", "code"), [("/etc/passwd", "PATH001"), ("../nowhere.onnx", "PATH002")])
def test_links_in_a_model_folder_are_diagnostics_and_nothing_is_registered(cli: Cli, example: Path, target: str,
                                                                           code: str) -> None:
    (example / "models" / "cancer-onnx" / "extra").symlink_to(target)
    res = cli("validate", str(example), "--offline")
    assert res.code == 1
    assert f"models/cancer-onnx.yml:5:1: error {code}" in res.out and "'./cancer-onnx/extra'" in res.out
    for argv in (("plan", str(example)), ("apply", str(example), "--auto-approve")):
        res = cli(*argv)
        assert res.code == 1 and code in res.out + res.err and "Traceback" not in res.err
    assert not (example / ".mlops" / "dev" / "state.db").exists()


@pytest.mark.slow
def test_a_link_to_a_device_never_hangs_plan(example: Path) -> None:
    """In a process of its own, with a deadline: reading /dev/zero never ends."""
    (example / "models" / "cancer-onnx" / "extra").symlink_to("/dev/zero")
    for argv in (("validate", str(example), "--offline"), ("plan", str(example))):
        res = run_cli(*argv)
        assert res.returncode == 1 and "PATH001" in res.stdout + res.stderr


@pytest.mark.slow
def test_special_files_in_an_asset_folder_are_never_read(example: Path) -> None:
    os.mkfifo(example / "models" / "cancer-onnx" / "pipe")
    res = run_cli("validate", str(example), "--offline")
    assert res.returncode == 1 and "error PATH003" in res.stdout and "'./cancer-onnx/pipe' is a FIFO" in res.stdout


def test_a_link_inside_the_repository_is_followed_and_a_loop_is_refused(cli: Cli, example: Path) -> None:
    folder = example / "models" / "cancer-onnx"
    (folder / "labels-again.json").symlink_to("labels.json")
    (folder / "shared").symlink_to("../../samples")
    assert cli("validate", str(example), "--offline").code == 0
    assert cli("apply", str(example), "--auto-approve").code == 0
    target = example / "download"
    assert cli("model", "download", "cancer-onnx:1", "--dir", str(target), "-C", str(example)).code == 0
    got = target / "cancer-onnx" / "1"
    assert (got / "labels-again.json").read_bytes() == (folder / "labels.json").read_bytes()
    assert (got / "shared" / "request.json").is_file() and not (got / "labels-again.json").is_symlink()
    (folder / "loop").symlink_to(".")
    res = cli("validate", str(example), "--offline")
    assert res.code == 1 and "error PATH002" in res.out and "back into a folder that contains it" in res.out


@pytest.mark.slow
@pytest.mark.parametrize(("make", "code", "message"), [
    (lambda p: p.symlink_to("/dev/zero"), "PATH001", "outside the repository"),
    (lambda p: p.symlink_to("missing.yml"), "PATH002", "does not exist"),
    (lambda p: os.mkfifo(p), "YAML003", "FIFO"),
])
def test_a_resource_file_that_is_a_link_or_device_is_not_read(example: Path, make: Callable[[Path], None],
                                                              code: str, message: str) -> None:
    make(example / "models" / "zero.yml")
    res = run_cli("validate", str(example), "--offline")
    assert res.returncode == 1 and f"models/zero.yml:1:1: error {code}" in res.stdout and message in res.stdout


def test_a_step_output_that_links_out_of_the_run_fails_the_step(cli: Cli, tmp_path: Path) -> None:
    root = command_job(tmp_path / "repo", "ln -s /etc/passwd ${{outputs.out}}/passwd", "  n: 1")
    res = cli("job", "run", "jobs/job.yml", cwd=root)
    assert res.code == 1 and "outside the step's outputs" in res.out + res.err
