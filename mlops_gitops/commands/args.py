"""Argument helpers the commands share; each command declares its own arguments with them.

`-C DIR` is handled once by the CLI for every command (as `git -C`: the folder changes first, and every
path argument is relative to it), so commands only take `--workspace` here.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _SubParsers = argparse._SubParsersAction


def workspace(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workspace", help="workspace name from mlops.yaml (default: default_workspace)")


def color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", dest="color", action="store_true", default=None, help="force colour")
    p.add_argument("--no-color", dest="color", action="store_false", help="no colour")


def prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", dest="prune", action="store_true", default=None,
                   help="delete (archive, for versioned assets) what is no longer in the tree")
    p.add_argument("--no-prune", dest="prune", action="store_false", help="override prune: true in mlops.yaml")


def promote(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-promote", dest="promote", action="store_false", default=None,
                   help="deployments naming a model @latest keep the version it names now, even where a pipeline "
                        "of this apply registers the next one (promote_latest: false in the workspace's settings)")


def fmt(p: argparse.ArgumentParser, *choices: str) -> None:
    p.add_argument("--format", dest="fmt", choices=list(choices or ("text", "json")), default="text",
                   help="output format (default: text)")


def examples(p: argparse.ArgumentParser, *lines: str) -> None:
    """End the --help of `p` with these example command lines, kept as written. Tests parse every line that
    starts with `mlops-gitops `: an example must be a valid invocation against example-repo/."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)


class _Actions(_SubParsers):
    """Sub-parsers whose --help begins with their one-line help (`model list --help`)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))
        return super().add_parser(name, **kwargs)


def actions(p: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Sub-actions of a command (`model list`, `job run`, …), one required."""
    sub = p.add_subparsers(dest=dest, metavar="ACTION", parser_class=type(p), action=_Actions,
                           help=f"what to do; `{p.prog} ACTION --help` shows its options")
    sub.required = True
    return sub
