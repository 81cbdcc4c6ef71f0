"""Batch scoring: mini-batches of files, scored by worker processes, as Azure ML's batch deployments do."""
