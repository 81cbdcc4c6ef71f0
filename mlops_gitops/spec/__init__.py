"""Desired state: YAML with positions, one pydantic model per kind, references, mlops.yaml."""
