"""Argument helpers the commands share; each command declares its own arguments with them.

`-C DIR` is handled once by the CLI for every command (as `git -C`: the folder changes first, and every
path argument is relative to it), so commands only take `--workspace` here.
"""

from __future__ import annotations

import argparse


def workspace(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workspace", help="workspace name from mlops.yaml (default: default_workspace)")


def color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", dest="color", action="store_true", default=None, help="force colour")
    p.add_argument("--no-color", dest="color", action="store_false", help="no colour")


def prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", dest="prune", action="store_true", default=None,
                   help="delete (archive, for versioned assets) what is no longer in the tree")
    p.add_argument("--no-prune", dest="prune", action="store_false", help="override prune: true in mlops.yaml")


def fmt(p: argparse.ArgumentParser, *choices: str) -> None:
    p.add_argument("--format", dest="fmt", choices=list(choices or ("text", "json")), default="text")


def actions(p: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Sub-actions of a command (`model list`, `job run`, …), one required."""
    sub = p.add_subparsers(dest=dest, metavar="ACTION", parser_class=type(p))
    sub.required = True
    return sub
