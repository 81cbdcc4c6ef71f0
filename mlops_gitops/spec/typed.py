"""Validate a parsed document against its pydantic model and turn errors into positioned diagnostics."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mlops_gitops.diagnostics import Diagnostics, Severity
from mlops_gitops.spec.yamlload import Document, Loc

M = TypeVar("M", bound=BaseModel)

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "none_required": "null",
}


def _has(cur: Any, part: Any) -> bool:
    if isinstance(cur, dict):
        return isinstance(part, str) and part in cur
    return isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)


def _data_path(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union-member tags from loc, keeping only keys present in the data."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        if _has(cur, part):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and not _looks_like_tag(part):
            out.append(part)  # a missing key: keep it so the message can name it
            cur = None
    return tuple(out)


def _looks_like_tag(part: str) -> bool:
    # Union member tags: 'str', 'InlineModel', 'function-after[...]', 'literal[...]', 'dict[str,any]'
    return part[:1].isupper() or "[" in part or part in {"str", "int", "float", "bool", "none", "list", "dict"}


def _where(path: Loc) -> str:
    return ".".join(str(p) for p in path) or "document"


def _messages(errors: Sequence[Mapping[str, Any]], data: Any) -> list[tuple[Loc, str]]:
    """One message per data location: prefer the errors that reached deepest into the value."""
    grouped: dict[Loc, list[Mapping[str, Any]]] = {}
    for err in errors:
        grouped.setdefault(_data_path(data, err["loc"]), []).append(err)
    # A union error at `a` is noise when some member got further, to `a.b`.
    keep = {p: errs for p, errs in grouped.items() if not any(o != p and o[: len(p)] == p for o in grouped)}
    out = []
    for path, errs in keep.items():
        if any(e["type"] == "missing" for e in errs):
            out.append((path, f"missing required field '{path[-1]}'" if path else "missing required field"))
            continue
        expected = sorted({_EXPECTED[e["type"]] for e in errs if e["type"] in _EXPECTED})
        others = [e for e in errs if e["type"] not in _EXPECTED]
        if others:
            msg = others[0]["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            out.append((path, f"{_where(path)}: {msg}" if path else msg))
        elif expected:
            got = type(errs[0].get("input")).__name__ if "input" in errs[0] else "value"
            got = {"dict": "mapping", "NoneType": "null", "str": "string"}.get(got, got)
            out.append((path, f"{_where(path)}: expected {' or '.join(expected)}, got {got}"))
    return out


def _strip(data: Any, path: Loc) -> None:
    cur = data
    for part in path[:-1]:
        cur = cur[part]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)


def validate_document(
    model: type[M], doc: Document, diags: Diagnostics, strict: bool, data: Any = None
) -> M | None:
    """Validate doc.data (or data) as model; unknown fields are warnings unless strict."""
    data = doc.data if data is None else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    extras = [e for e in errors if e["type"] == "extra_forbidden"]
    if extras:
        data = copy.deepcopy(data)
        for err in extras:
            path = _data_path(data, err["loc"])
            line, col = doc.pos(path)
            severity = Severity.ERROR if strict else Severity.WARNING
            diags.add(doc.rel, line, col, "FIELD002", f"unknown field '{_where(path)}'", severity)
        for err in extras:
            _strip(data, _data_path(data, err["loc"]))
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
    for path, message in _messages(errors, data):
        line, col = doc.pos(path)
        diags.add(doc.rel, line, col, "FIELD001", message)
    return None
