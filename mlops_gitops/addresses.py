"""Resource kinds and typed addresses such as `model:churn:4` or `online-deployment:churn/blue`."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_gitops.kinds import VERSIONED, Kind, rank

__all__ = ["Address", "Kind"]


@dataclass(frozen=True, order=True)
class Address:
    kind: Kind
    name: str  # deployments: "<endpoint>/<deployment>"
    version: str | None = None

    def __str__(self) -> str:
        base = f"{self.kind.value}:{self.name}"
        return f"{base}:{self.version}" if self.version is not None else base

    @property
    def unversioned(self) -> Address:
        return Address(self.kind, self.name)

    def sort_key(self) -> tuple[int, str, str]:
        return (rank(self.kind), self.name, _version_key(self.version))

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `kind:name[:version]`; raises ValueError with a helpful message."""
        kind_text, sep, rest = text.partition(":")
        try:
            kind = Kind(kind_text)
        except ValueError:
            kinds = ", ".join(k.value for k in Kind)
            raise ValueError(f"unknown kind '{kind_text}' in '{text}' (kinds: {kinds})") from None
        if not sep or not rest:
            raise ValueError(f"'{text}' needs a name: {kind_text}:NAME")
        if kind in VERSIONED and ":" in rest:
            name, _, version = rest.partition(":")
            return cls(kind, name, version)
        return cls(kind, rest)


def _version_key(version: str | None) -> str:
    # Integer versions sort numerically ("10" after "9"), others lexically after them.
    if version is None:
        return ""
    return f"0{int(version):020d}" if version.isdigit() else f"1{version}"
