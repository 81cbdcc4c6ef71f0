"""Files that ship with the package: the generated JSON Schemas.

They live in the repository's top-level `schemas/` folder (where editors and yaml-language-server point)
and the wheel carries them as `mlops_gitops/schemas/`; both an installed wheel and a source checkout
(an editable install) find them here.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def schemas_dir() -> Path:
    for candidate in (PACKAGE / "schemas", PACKAGE.parent / "schemas"):  # a wheel, then a source checkout
        if (candidate / "mlops.schema.json").is_file():
            return candidate
    raise FileNotFoundError(f"the JSON Schemas are missing: neither {PACKAGE / 'schemas'} nor "
                            f"{PACKAGE.parent / 'schemas'} holds them (reinstall mlops-gitops)")
