"""The lineage graph: where a model, data asset, run or deployment came from and what uses it."""
