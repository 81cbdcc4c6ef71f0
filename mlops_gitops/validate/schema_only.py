"""Validate files against the published JSON Schemas alone (the `mlops-gitops-schemas` pre-commit hook).

For repositories that want schema checks without the whole-tree rules: each file that names a known
kind in `$schema` is checked against `schemas/<kind>.schema.json`; other YAML files are left alone.
Errors carry the line and column of the offending value.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.resources import schemas_dir
from mlops_gitops.spec.catalog import lookup
from mlops_gitops.spec.yamlload import load_file


def _folded(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _enum(validator: Any, enums: Any, instance: Any, schema: Any) -> Any:
    """Enum values match ignoring case, as Azure's SDK (and the whole-tree validate) read them."""
    if _folded(instance) not in [_folded(e) for e in enums]:
        yield jsonschema.ValidationError(f"{instance!r} is not one of {enums!r}")


def _const(validator: Any, const: Any, instance: Any, schema: Any) -> Any:
    if _folded(instance) != _folded(const):
        yield jsonschema.ValidationError(f"{const!r} was expected")


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"enum": _enum, "const": _const})


@cache
def _validator(schema_name: str) -> Any:
    text = (schemas_dir() / f"{schema_name}.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return _Validator(schema)


def check_files(paths: list[Path], root: Path) -> tuple[Diagnostics, int]:
    """Diagnostics for the files, and how many of them were resource files (checked)."""
    diags = Diagnostics()
    checked = 0
    for path in paths:
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = str(path)
        doc = load_file(path, rel, diags)
        if doc is None or not isinstance(doc.data, dict) or not isinstance(doc.data.get("$schema"), str):
            continue
        info = lookup(doc.data["$schema"])
        if info is None:
            continue  # not one of ours: other tools own it
        checked += 1
        for error in sorted(_validator(info.schema_name).iter_errors(doc.data), key=lambda e: list(e.absolute_path)):
            loc = tuple(error.absolute_path)
            line, col = doc.pos(loc)
            where = ".".join(str(p) for p in loc) or "the document"
            diags.add(rel, line, col, "SCHEMA010", f"{where}: {error.message}")
    return diags, checked
