"""The committed JSON Schemas are generated from the pydantic models and must not drift from them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mlops_gitops.spec.jsonschema import SCHEMA_DIR, all_schemas, render
from tests.helpers import EXAMPLE


def test_committed_schemas_match_the_code() -> None:
    expected = all_schemas()
    committed = {p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json")}
    assert committed == set(expected), "run: python -m mlops_gitops.spec.jsonschema"
    for name, schema in expected.items():
        text = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
        assert text == render(schema), f"{name}.schema.json is stale: run python -m mlops_gitops.spec.jsonschema"


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/{name}.schema.json")


def test_example_files_validate_against_the_published_schemas() -> None:
    from ruamel.yaml import YAML

    from mlops_gitops.spec.catalog import lookup

    yaml = YAML(typ="safe")
    checked = 0
    for path in sorted(EXAMPLE.rglob("*.yml")):
        doc = yaml.load(path.read_text())
        if not isinstance(doc, dict) or "$schema" not in doc:
            continue
        info = lookup(doc["$schema"])
        assert info is not None, path
        schema = json.loads((SCHEMA_DIR / f"{info.schema_name}.schema.json").read_text())
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        assert errors == [], (path, [e.message for e in errors])
        checked += 1
    assert checked == 14  # every resource file of the example
    config = yaml.load((EXAMPLE / "mlops.yaml").read_text())
    schema = json.loads((SCHEMA_DIR / "mlops.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(config)) == []


def test_schema_rejects_what_the_loader_rejects() -> None:
    schema = json.loads((SCHEMA_DIR / "managedOnlineEndpoint.schema.json").read_text())
    bad = {"name": "e", "auth_mode": "password"}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))
    assert Path(SCHEMA_DIR).is_dir()
