"""Argument parsing and exit codes only: every command is a function in mlops_gitops.commands.

Exit codes: 0 success / no changes, 1 error, 2 changes present (plan --detailed-exitcode, drift),
3 an internal error (a bug: run with --debug for the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from mlops_gitops import __version__
from mlops_gitops.commands.args import examples
from mlops_gitops.errors import ConfigError, GitOpsError, SpecError
from mlops_gitops.textsafe import defuse_text


def _did_you_mean(words: Iterable[str], candidates: Iterable[str]) -> str:
    """' (did you mean 'model'?)' for the closest candidates of the words, or '' when none is close."""
    pool = sorted(set(candidates))
    close = [m[0] for m in (difflib.get_close_matches(w, pool, n=1, cutoff=0.7) for w in words) if m]
    return f" (did you mean {' and '.join(repr(c) for c in dict.fromkeys(close))}?)" if close else ""


class Parser(argparse.ArgumentParser):
    """Usage errors exit 1 (2 means "changes present") and suggest the closest command, action, option or choice."""

    _chosen_parser: argparse.ArgumentParser | None = None  # the command's (or action's) parser, once parsed

    def error(self, message: str) -> NoReturn:
        parser: argparse.ArgumentParser = self
        unknown = "unrecognized arguments: "
        if message.startswith(unknown):  # reported by the top parser: the options are those of the chosen action
            while isinstance(parser, Parser) and parser._chosen_parser is not None:
                parser = parser._chosen_parser
            words = [arg.partition("=")[0] for arg in message[len(unknown):].split() if arg.startswith("-")]
            message += _did_you_mean(words, parser._option_string_actions)
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(1)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and value in action.choices:
            self._chosen_parser = action.choices[value]  # argparse checks the command (action) here: keep it
        if action.choices is not None and value not in action.choices:
            hint = _did_you_mean([str(value)], (str(c) for c in action.choices))
            if hint:
                raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint}")
        super()._check_value(action, value)


# name -> (module in mlops_gitops.commands, its function that declares the arguments, help). Only the
# module of the command that runs is imported: start-up time matters for pre-commit hooks.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("validate", "add_arguments", "validate the tree or some of its files (exit 0 valid, 1 invalid)"),
    "plan": ("plan", "add_arguments", "show what apply would change"),
    "apply": ("apply", "add_arguments", "apply the repository (or a saved plan) to a workspace"),
    "drift": ("drift", "add_arguments", "report changes made outside Git (exit 2 when there are any)"),
    "model": ("models", "add_arguments", "models in the workspace"),
    "search": ("models", "add_search_arguments", "resources by tag: --tag key=value (TagName=TagValue); "
                                                 "repeat to AND"),
    "history": ("history", "add_arguments", "who changed a resource, when and why (workspace log + git log)"),
    "state": ("state", "add_arguments", "inspect the workspace state"),
    "force-unlock": ("state", "add_unlock_arguments", "remove a lock left behind (give its ID)"),
    "endpoint": ("endpoint", "add_arguments", "endpoints in the workspace"),
    "serve": ("serve", "add_arguments", "start the endpoint host in the background (or --stop it)"),
    "lineage": ("lineage", "add_arguments", "upstream and downstream of a model, data asset, run or deployment"),
    "ci": ("ci", "add_arguments", "in GitHub Actions or Azure Pipelines: plan and comment on pull requests, "
                                  "apply on the default branch, check drift on schedules"),
    "events": ("events", "add_arguments", "lifecycle events recorded in the workspace"),
    "metrics": ("metrics", "add_arguments", "metrics of pipeline runs"),
    "job": ("jobs", "add_arguments", "command and pipeline runs on the workspace"),
    "batch": ("batch", "add_arguments", "jobs of batch endpoints (`batch invoke`)"),
    "data": ("data", "add_arguments", "data the endpoint host collected from deployments (data_collector)"),
    "analytics": ("analytics", "add_arguments", "the workspace's jobs, metrics, predictions, monitor results and "
                                                "collected data as Parquet files (BI tools, DuckDB)"),
    "rollout": ("rollout", "add_arguments", "progressive rollouts of online endpoints: where one stands"),
    "monitor": ("monitors", "add_arguments", "monitors of the workspace: run one now, list and show their runs"),
    "schedule": ("schedules", "add_arguments", "schedules of the workspace: list, fire what is due, trigger, "
                                               "disable, enable"),
    "package": ("package", "add_arguments", "build a deployment of the workspace as an OCI image "
                                            "(Docker Engine API)"),
}
# Options of the program (before or after the command); their values are not command names.
_CHDIR = ("-C", "--chdir")


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named in argv, found without parsing (so only its module is imported)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _CHDIR:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _chdir(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(*_CHDIR, dest="chdir", metavar="DIR", default=default,
                   help="change to DIR first, as `git -C`: path arguments are relative to it")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = Parser(prog="mlops-gitops", description="GitOps for the machine-learning lifecycle.")
    parser.add_argument("-V", "--version", action="version", version=f"mlops-gitops {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    _chdir(parser, None)
    examples(parser, "mlops-gitops apply example-repo --auto-approve",
             "mlops-gitops help model list            # the options of `model list`")
    parser.epilog = f"{parser.epilog}\n\n{_EXIT_CODES}"
    sub = parser.add_subparsers(dest="_command", metavar="COMMAND", parser_class=Parser,
                                help="what to do; `mlops-gitops help COMMAND` shows its options")
    sub.required = True
    chosen = _chosen(argv)
    for name, (module, declare, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == chosen or (chosen is None and not argv):
            getattr(importlib.import_module(f"mlops_gitops.commands.{module}"), declare)(p)
            _chdir_everywhere(p)
    p = sub.add_parser("help", help="show the help of a command or of one of its actions",
                       description="show the help of the program, of a command or of one of its actions "
                                   "(the same as --help after them)")
    p.add_argument("command", nargs="?", metavar="COMMAND", help="a command (default: list the commands)")
    p.add_argument("action", nargs="?", metavar="ACTION", help="one of the command's actions (`model list`)")
    examples(p, "mlops-gitops help model", "mlops-gitops help endpoint invoke")
    p.set_defaults(run=_help)
    _chdir_everywhere(p)
    return parser


_EXIT_CODES = """exit codes:
  0  success, no changes      1  error (usage errors too)     2  changes present (plan --detailed-exitcode, drift)
  3  internal error (a bug: rerun with --debug)               130  interrupted"""


def _help(command: str | None = None, action: str | None = None) -> int:
    """`help [COMMAND [ACTION]]`: the same as `[COMMAND [ACTION]] --help`."""
    argv = [*(a for a in (command, action) if a is not None), "--help"]
    try:
        build_parser(argv).parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _chdir_everywhere(p: argparse.ArgumentParser) -> None:
    """-C also after the command and its action (`model list -C DIR`); the last one given wins."""
    _chdir(p, argparse.SUPPRESS)
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _chdir_everywhere(child)


def _dispatch(args: argparse.Namespace) -> int:
    run: Callable[..., int] = args.run
    kwargs = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("run", "debug", "chdir")}
    return run(**kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 1
    cwd = os.getcwd()
    from mlops_gitops import progress

    progress.configure()  # a spinner on a terminal, timestamped lines in CI logs (MLOPS_GITOPS_PROGRESS)
    try:
        if args.chdir is not None:
            try:
                os.chdir(args.chdir)
            except OSError as exc:
                raise ConfigError(f"cannot change to folder '{args.chdir}' (-C): {exc.strerror}") from None
        return _dispatch(args)
    except SpecError as exc:
        if exc.diagnostics:
            from mlops_gitops.validate.report import as_text

            print(as_text(exc.diagnostics, 0).rsplit("\n", 1)[0], file=sys.stderr)
        print(defuse_text(f"Error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except GitOpsError as exc:
        if args.debug:
            traceback.print_exc()
        print(defuse_text(f"Error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        return 1
    except Exception as exc:  # a bug: say so plainly, traceback only with --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(defuse_text(f"Internal error ({type(exc).__name__}: {exc}). This is a bug in mlops-gitops; "
                              "rerun with --debug for the traceback and report it."), file=sys.stderr)
        return 3
    finally:
        progress.current().clear()
        progress.configure("off")  # main() is also called in-process (tests, integrations)
        os.chdir(cwd)

