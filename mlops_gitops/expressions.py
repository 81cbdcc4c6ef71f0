"""Azure ML's `${{…}}` expressions and `$[[…]]` optional blocks: the one parser every layer uses.

In a command, `${{inputs.x}}` and `${{outputs.y}}` name the step's own ports; `$[[ … ]]` is dropped
when an expression inside it has no value. In a pipeline, a binding is a whole value:
`${{parent.inputs.x}}`, `${{parent.outputs.y}}`, `${{parent.jobs.<step>.outputs.<o>}}` (or `.inputs.`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.S)


@dataclass(frozen=True)
class Expression:
    text: str  # what is between the braces, trimmed: "inputs.x", "parent.jobs.prep.outputs.clean"
    start: int  # where `${{` begins in the searched text
    end: int  # just after `}}`

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.text.split("."))

    def __str__(self) -> str:
        return "${{" + self.text + "}}"


@dataclass(frozen=True)
class Binding:
    """A pipeline value that is one expression of the parent: its inputs, its outputs, or a step's port."""

    scope: str  # inputs | outputs | jobs
    name: str  # the pipeline's input or output; for jobs: the step
    port: str = ""  # jobs: the step's port
    direction: str = ""  # jobs: inputs | outputs
    text: str = ""

    def __str__(self) -> str:
        return self.text


def find(text: str) -> list[Expression]:
    return [Expression(m.group(1), m.start(), m.end()) for m in _EXPRESSION.finditer(text)]


def match_at(text: str, index: int) -> Expression | None:
    m = _EXPRESSION.match(text, index)
    return Expression(m.group(1), m.start(), m.end()) if m else None


def whole(value: object) -> Expression | None:
    """The expression when the whole value (spaces aside) is one `${{…}}`."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    m = _EXPRESSION.fullmatch(stripped)
    return Expression(m.group(1), 0, len(stripped)) if m else None


def binding(value: object) -> Binding | None:
    """`${{parent.…}}` as a typed binding; None when the value is not one (or is malformed: see `whole`)."""
    expr = whole(value)
    if expr is None:
        return None
    parts = expr.parts
    if len(parts) == 3 and parts[0] == "parent" and parts[1] in ("inputs", "outputs"):
        return Binding(parts[1], parts[2], text=str(expr))
    if len(parts) == 5 and parts[0] == "parent" and parts[1] == "jobs" and parts[3] in ("inputs", "outputs"):
        return Binding("jobs", parts[2], parts[4], parts[3], text=str(expr))
    return None


def optional_blocks(text: str) -> Iterator[tuple[int, int, str]]:
    """Each `$[[ … ]]`: start, end and its inside."""
    for m in _OPTIONAL.finditer(text):
        yield m.start(), m.end(), m.group(1)


def resolve_optional(text: str, has_value: Callable[[str], bool]) -> str:
    """Keep the inside of each optional block whose expressions all have values; drop the others."""

    def one(m: re.Match[str]) -> str:
        inner = m.group(1)
        return inner if all(has_value(e.text) for e in find(inner)) else ""

    return _OPTIONAL.sub(one, text)
