"""The exceptions a user can see. Everything here exits 1 with one clear message.

GitOpsError
 ├── SpecError            bad files in the tree (carries diagnostics)
 ├── ConfigError          bad mlops.yaml, bad arguments, unknown workspace
 ├── PlanFileError        a saved plan that is corrupt or not ours
 ├── StalePlanError       a saved plan whose workspace or tree moved since
 ├── WorkspaceError       the state store cannot be opened or is inconsistent
 │    └── LockHeldError   another apply holds the workspace lock
 ├── ResourceInUseError   deleting/archiving something a live deployment uses
 ├── NotFoundError        a resource named on the command line does not exist
 └── ApplyError           one or more actions failed (summary already printed)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_gitops.diagnostics import Diagnostic

__all__ = [
    "ApplyError",
    "ConfigError",
    "GitOpsError",
    "LockHeldError",
    "NotFoundError",
    "PlanFileError",
    "ResourceInUseError",
    "SpecError",
    "StalePlanError",
    "WorkspaceError",
]


class GitOpsError(Exception):
    """An expected failure: printed as one message, exit code 1, no traceback."""

    exit_code = 1


class SpecError(GitOpsError):
    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


class ConfigError(GitOpsError):
    pass


class PlanFileError(GitOpsError):
    pass


class StalePlanError(GitOpsError):
    pass


class WorkspaceError(GitOpsError):
    pass


class LockHeldError(WorkspaceError):
    pass


class ResourceInUseError(GitOpsError):
    pass


class NotFoundError(GitOpsError):
    pass


class ApplyError(GitOpsError):
    pass
