"""Secrets never appear in plans, logs or comments: values under secret-looking keys are masked."""

from __future__ import annotations

import hashlib
import re
from typing import Any

SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
                        r"conn(ection)?[_-]?str(ing)?|sas[_-]?token|bearer)", re.I)


def is_secret_path(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return bool(SECRET_KEY.search(last))


def mask_value(value: Any) -> str:
    # Equal values get equal masks so a change stays visible without showing either side.
    digest = hashlib.sha256(repr(value).encode()).hexdigest()[:8]
    return f"(sensitive {digest})"


def mask(path: str, value: Any) -> Any:
    if value is None or not is_secret_path(path):
        return value
    return mask_value(value)


def mask_tree(value: Any, path: str = "") -> Any:
    if isinstance(value, dict):
        return {k: mask_tree(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_tree(v, path) for v in value]
    return mask(path, value)
