"""The command line's help: every argument explained, examples that parse, `help`, -V and "did you mean"."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import pytest

from mlops_gitops import __version__
from mlops_gitops.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every parser below it (commands, their actions)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    return [line.strip() for line in (parser.epilog or "").splitlines() if line.strip().startswith("mlops-gitops ")]


# build_parser([]) declares every command (with argv, only the chosen one).
PARSERS = {p.prog: p for p in _parsers(build_parser([]))}
EXAMPLES = [(prog, line) for prog, p in PARSERS.items() for line in _examples(p)]


def test_the_tree_is_walked() -> None:
    assert {"mlops-gitops", "mlops-gitops model list", "mlops-gitops endpoint invoke", "mlops-gitops job run",
            "mlops-gitops state show", "mlops-gitops help", "mlops-gitops force-unlock"} <= set(PARSERS)


@pytest.mark.parametrize("prog", PARSERS)
def test_every_argument_has_help(prog: str) -> None:
    parser = PARSERS[prog]
    missing = [action.dest for action in parser._actions
               if not isinstance(action, argparse._HelpAction | argparse._VersionAction)
               and (not action.help or action.help == argparse.SUPPRESS)]
    assert not missing, f"{prog}: no help for {missing}"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            bare = [choice.dest for choice in action._choices_actions if not choice.help]
            assert not bare, f"{prog}: no help for {bare}"
    parser.format_help()  # the help strings format (no stray %)


@pytest.mark.parametrize("prog", PARSERS)
def test_every_parser_ends_with_examples(prog: str) -> None:
    parser = PARSERS[prog]
    assert "examples:\n  mlops-gitops " in (parser.epilog or ""), f"{prog} has no examples"
    lines = _examples(parser)
    assert 1 <= len(lines) <= 2, f"{prog}: {lines}"
    text = parser.format_help()
    assert all(f"\n  {line}\n" in text + "\n" for line in lines), f"{prog}: the examples are reflowed"


@pytest.mark.parametrize(("prog", "line"), EXAMPLES)
def test_every_example_parses(prog: str, line: str) -> None:
    argv = shlex.split(line, comments=True)[1:]
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit:
        pytest.fail(f"example of {prog} does not parse: {line}")
    assert callable(args.run)
    words = prog.split()[1:]  # the example runs the command (and action) it illustrates
    assert [args._command, getattr(args, "_action", None)][:len(words)] == words, line


def test_help_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "model"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mlops-gitops model ") and "examples:" in out
    assert main(["help", "endpoint", "invoke"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mlops-gitops endpoint invoke ") and "--request-file FILE" in out
    assert main(["help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mlops-gitops ") and "    help " in out and "exit codes:" in out


def test_help_of_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "nosuch"]) == 1
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err
    assert main(["help", "modle"]) == 1
    assert "did you mean 'model'?" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flag(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    assert capsys.readouterr().out.strip() == f"mlops-gitops {__version__}"


@pytest.mark.parametrize(("argv", "suggestion", "usage"), [
    (["modle", "list"], "'model'", "usage: mlops-gitops [-h]"),
    (["-C", "example-repo", "endpiont", "list"], "'endpoint'", "usage: mlops-gitops [-h]"),
    (["model", "lst"], "'list'", "usage: mlops-gitops model [-h]"),
    (["apply", "--auto-aprove"], "'--auto-approve'", "usage: mlops-gitops apply [-h]"),
    (["plan", "--detailed-exitcdoe"], "'--detailed-exitcode'", "usage: mlops-gitops plan [-h]"),
    (["model", "list", "--include-archivd"], "'--include-archived'", "usage: mlops-gitops model list [-h]"),
    (["job", "logs", "RUN", "--lnes=5"], "'--lines'", "usage: mlops-gitops job logs [-h]"),
    (["plan", "--format", "jsn"], "'json'", "usage: mlops-gitops plan [-h]"),
])
def test_did_you_mean(argv: list[str], suggestion: str, usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"did you mean {suggestion}?" in err and err.startswith(usage)


def test_no_far_fetched_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--auto-aprove"]) == 1  # an option of apply, not plan: nothing of plan is close
    err = capsys.readouterr().err
    assert "unrecognized arguments: --auto-aprove" in err and "did you mean" not in err
    assert main(["nosuch"]) == 1
    err = capsys.readouterr().err
    assert "did you mean" not in err and "choose from" in err
