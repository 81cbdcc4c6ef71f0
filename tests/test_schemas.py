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


@pytest.mark.slow
def test_a_wheel_carries_the_schemas_and_finds_them(tmp_path: Path) -> None:
    """Built as a user installs it: the top-level schemas/ folder becomes mlops_gitops/schemas in the wheel,
    and validate --schema-only finds it there (an editable install finds the checkout's, as every other test)."""
    import subprocess
    import sys
    import zipfile

    from uv import find_uv_bin

    from tests.helpers import REPO_ROOT, write

    uv = str(find_uv_bin())
    subprocess.run([uv, "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist"), str(REPO_ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("mlops_gitops-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "mlops_gitops/schemas/model.schema.json" in names and "mlops_gitops/schemas/mlops.schema.json" in names
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
                   check=True, capture_output=True)
    bad = write(tmp_path / "m.yml", "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
                                    "name: m\npath: [1, 2]\n")
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from mlops_gitops.resources import schemas_dir; print(schemas_dir())"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "site-packages/mlops_gitops/schemas" in probe.stdout
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "mlops_gitops", "validate", "--schema-only",
                           str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and "SCHEMA010" in done.stdout, done.stdout + done.stderr
