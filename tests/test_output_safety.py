"""Text from the tree never becomes a CI runner command or a fake line: values are escaped when printed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.textsafe import defuse, escape
from tests.helpers import Result, commit_all

Cli = Callable[..., Result]
GH = "::set-env name=PWNED::1"
AZ = "##vso[task.prependpath]/tmp/evil"


def inject(example: Path) -> None:
    """A tag key, a tag value, a description and an unknown field that carry runner commands after a newline."""
    path = example / "models" / "cancer-onnx.yml"
    text = path.read_text().replace(
        "tags: {framework: onnx, task: classification}",
        f'tags: {{framework: onnx, "k\\n{GH}": "v\\r\\n{AZ}", task: "a\\u2028{GH}\\x1b[31m"}}\n'
        f'description2: 1\n"x\\n{GH}": 2')
    path.write_text(text)
    commit_all(example, "Inject runner commands")


def commands_in(text: str, ours: tuple[str, ...] = ()) -> list[str]:
    """Lines a runner would act on that we did not mean as commands."""
    found = []
    for line in re.split("\r\n|\r|\n|\u2028|\u2029|\x85", text):
        if line.startswith(ours):
            continue
        if line.lstrip().startswith("::") or "##vso[" in line or "\x1b" in line:
            found.append(line)
    return found


def test_plan_text_and_markdown_escape_every_value(cli: Cli, example: Path) -> None:
    inject(example)
    res = cli("plan", str(example), "--show-all")
    assert res.code == 0, res.err
    assert commands_in(res.out + res.err) == []
    assert "\\n::set-env" in res.out and "\\u2028" in res.out
    md = cli("plan", str(example), "--format", "markdown")
    assert commands_in(md.out) == [] and "\\n::set-env" in md.out
    assert "<code>" in md.out and "</details>" in md.out


@pytest.mark.parametrize(("fmt", "ours"), [("text", ()), ("github", ("::warning ", "::error ")),
                                           ("azure", ("##vso[task.logissue ",))])
def test_validate_output_carries_no_runner_command(cli: Cli, example: Path, fmt: str, ours: tuple[str, ...]) -> None:
    inject(example)
    res = cli("validate", str(example), "--offline", "--format", fmt)
    assert "FIELD002" in res.out
    assert commands_in(res.out + res.err, ours) == [], res.out


def test_apply_history_and_model_list_escape_values(cli: Cli, example: Path) -> None:
    inject(example)
    for argv in (("apply", str(example), "--auto-approve"), ("model", "list", "-C", str(example)),
                 ("history", "model:cancer-onnx", "-C", str(example)), ("events", "list", "-C", str(example)),
                 ("state", "show", "-C", str(example))):
        res = cli(*argv)
        assert res.code == 0, (argv, res.err)
        assert commands_in(res.out + res.err) == [], (argv, res.out)


def test_a_file_name_never_starts_a_runner_command(cli: Cli, example: Path) -> None:
    looks_like_a_model = "name: x\npath: ./model.onnx\n"  # a warning names the file
    (example / "##vso[task.setvariable variable=X]1.yml").write_text(looks_like_a_model)
    (example / "::set-env name=Y::2.yml").write_text(looks_like_a_model)
    res = cli("validate", str(example), "--offline")
    assert "SCHEMA001" in res.out
    assert commands_in(res.out) == [] and "./::set-env" in res.out


def test_escape_and_defuse() -> None:
    assert escape("a\nb\r\x1b[0m\u2028\x85\t") == "a\\nb\\r\\x1b[0m\\u2028\\x85\t"
    assert defuse("  ::set-output name=a::b") == "  \\::set-output name=a::b"
    assert defuse("text ##vso[task.complete]x") == "text ##vso%5Btask.complete]x"
    assert defuse("### a Markdown heading") == "### a Markdown heading"
