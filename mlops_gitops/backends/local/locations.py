"""How a process started for a workspace (its endpoint host, a batch job) is told where the store is: in its
environment, never on a command line (a database URL may hold a password). Standard library only."""

DATABASE_VARIABLE = "MLOPS_GITOPS_HOST_DATABASE"
ARTIFACTS_VARIABLE = "MLOPS_GITOPS_HOST_ARTIFACTS"
