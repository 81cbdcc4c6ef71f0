"""The embedded default workspace: SQL metadata store plus content-addressed files on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_gitops.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the package's light modules (quickread) must not pull in SQLAlchemy.
    if name == "LocalBackend":
        from mlops_gitops.backends.local.backend import LocalBackend

        return LocalBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
