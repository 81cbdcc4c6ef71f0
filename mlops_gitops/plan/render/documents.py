"""The plan as the documents a CI system keeps: Markdown (comments, summaries) and JSON (for later steps)."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_gitops.plan.model import Plan
from mlops_gitops.plan.render.jsonout import plan_to_dict
from mlops_gitops.plan.render.markdown import render_markdown


def plan_documents(plan: Plan, folder: Path) -> tuple[str, Path]:
    """The Markdown text, and the JSON file written into `folder`."""
    plan_file = folder / "mlops-plan.json"
    plan_file.write_text(json.dumps(plan_to_dict(plan), indent=2), encoding="utf-8")
    return render_markdown(plan), plan_file
