"""The embedded default workspace: SQL metadata store plus content-addressed files on disk."""

from mlops_gitops.backends.local.backend import LocalBackend, open_workspace

__all__ = ["LocalBackend", "open_workspace"]
