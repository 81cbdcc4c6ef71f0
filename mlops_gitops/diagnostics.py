"""Diagnostics are data: loaders and rules accumulate them instead of raising."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    column: int
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        return d

    def location(self) -> str:
        if not self.file:
            return ""
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


@dataclass
class Diagnostics:
    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        file: str,
        line: int,
        column: int,
        code: str,
        message: str,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.items.append(Diagnostic(file, line, column, code, severity, message))

    def extend(self, other: Diagnostics | list[Diagnostic]) -> None:
        self.items.extend(other.items if isinstance(other, Diagnostics) else other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        # Deduplicate: the same finding can be reached through two resources.
        return sorted(set(self.items), key=lambda d: (d.file, d.line, d.column, d.code, d.message))

    def promote_warnings(self) -> None:
        """--strict: every warning becomes an error."""
        self.items = [
            Diagnostic(d.file, d.line, d.column, d.code, Severity.ERROR, d.message) for d in self.items
        ]
