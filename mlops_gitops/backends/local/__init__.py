"""The embedded default workspace: SQL metadata store plus content-addressed files on disk."""

from mlops_gitops.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
