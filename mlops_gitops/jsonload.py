"""JSON read with a bound on nesting: Python's decoder recurses, so a 100,000-deep file ends in a
RecursionError (an internal error) instead of a message. The depth is checked first, in one linear scan
that skips strings; nothing deeper than MAX_DEPTH reaches the decoder."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 200
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class JSONDepthError(ValueError):
    def __init__(self, line: int, column: int, limit: int) -> None:
        super().__init__(f"line {line} column {column}: nesting deeper than {limit} levels")
        self.line, self.column = line, column


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for m in _TOKEN.finditer(text):
        c = m.group(0)
        if c in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, m.start()) + 1
                column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                raise JSONDepthError(line, column, limit)
        elif c in "]}":
            depth -= 1


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """json.loads, refusing documents nested deeper than `limit` (JSONDepthError, a ValueError)."""
    check_depth(text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text, limit)
    return json.loads(text)
