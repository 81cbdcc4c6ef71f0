"""Field-level differences between two specs, with replace-forcing fields marked."""

from __future__ import annotations

from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.kinds import traits
from mlops_gitops.plan.model import FieldChange
from mlops_gitops.redact import Masker


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def document(spec: dict[str, Any], derived: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """What we compare: the user's spec, the content hashes and resolved references, and the kind."""
    doc: dict[str, Any] = dict(spec)
    for key, info in (derived.get("paths") or {}).items():
        digest = f"dvc md5:{info['dvc'][:12]}" if "dvc" in info else f"sha256:{info['sha256'][:12]}"
        doc[f"{key} (content)"] = f"{digest}, {info['files']} file(s), {info['bytes']} B"
    for key, ref in (derived.get("refs") or {}).items():
        doc[f"{key} (resolved)"] = ref
    if schema_name and schema_name != "traffic":
        doc["schema"] = schema_name
    return doc


def field_changes(kind: Kind, before: dict[str, Any] | None, after: dict[str, Any] | None,
                  masker: Masker) -> list[FieldChange]:
    """What differs, field by field; secret values masked (by key, or credentials inside a URL)."""
    b = flatten(before) if before else {}
    a = flatten(after) if after else {}
    forced = traits(kind).replace_fields  # Azure refuses or ignores changing these in place
    out = []
    for path in sorted(set(a) | set(b)):
        if b.get(path) != a.get(path) or (path in a) != (path in b):
            top = path.split(".", 1)[0]
            out.append(FieldChange(path, masker.field(path, b.get(path)), masker.field(path, a.get(path)),
                                   before is not None and after is not None and top in forced))
    return out
