"""Generate the JSON Schemas in the repository's top-level schemas/ from the pydantic models.

Run `python -m mlops_gitops.spec.jsonschema` to rewrite them; a test fails when they drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from mlops_gitops.spec.catalog import CATALOG
from mlops_gitops.spec.config import RepoConfig

SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schemas"  # written in a source checkout
BASE_ID = "https://mlops-gitops.dev/schemas/"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Generator(GenerateJsonSchema):
    def generate(self, schema: Any, mode: Any = "validation") -> dict[str, Any]:
        out = super().generate(schema, mode=mode)
        return {"$schema": DIALECT, **out}


def schema_for(model: type[BaseModel], name: str, title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, schema_generator=_Generator, mode="validation")
    schema["$id"] = f"{BASE_ID}{name}.schema.json"
    schema["title"] = title
    # `x-gitops` is our one extension key; any other `x-` key is also tolerated by editors.
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    out = {name: schema_for(info.model, name, info.title) for name, info in CATALOG.items()}
    out["mlops"] = schema_for(RepoConfig, "mlops", "mlops-gitops repository config (mlops.yaml)")
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write():
        print(p, file=sys.stderr)
