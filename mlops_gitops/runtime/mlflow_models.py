"""MLflow models as files: where a model folder's MLmodel is, and the environment it asks for.

The toolkit never imports MLflow: an MLflow model is served by a scoring script run in the model's own
environment, built from the requirements the model was logged with (`requirements.txt`, else
`conda.yaml`) on the Python it names (`python_env.yaml`).
"""

from __future__ import annotations

import re
from pathlib import Path

from mlops_gitops.runtime.envs import ResolvedEnv, conda_mapping, resolve_conda, resolve_requirements

SCORING_SCRIPT = Path(__file__).parent / "serving" / "mlflow_score.py"
_MLFLOW = re.compile(r"^mlflow(\[[^\]]*\])?(?P<rest>\s*(==|>=|<=|~=|!=|<|>).*)?$", re.I)


def find_mlmodel(model_dir: Path) -> Path | None:
    """The folder holding MLmodel: the model folder itself, or the one folder Azure's layout puts in it."""
    if (model_dir / "MLmodel").is_file():
        return model_dir
    found = sorted(p.parent for p in model_dir.glob("*/MLmodel") if p.is_file())
    return found[0] if len(found) == 1 else None


def _python(folder: Path) -> str | None:
    env_file = folder / "python_env.yaml"
    if not env_file.is_file():
        return None
    m = re.search(r"^python:\s*['\"]?(\d+)\.(\d+)", env_file.read_text(encoding="utf-8"), re.M)
    return f"=={m.group(1)}.{m.group(2)}.*" if m else None


def _skinny(req: str) -> str:
    """`mlflow==3.1` -> `mlflow-skinny==3.1`: serving needs MLflow's pyfunc, not its tracking server."""
    m = _MLFLOW.match(req.strip())
    return f"mlflow-skinny{(m.group('rest') or '').strip()}" if m else req


def model_environment(folder: Path) -> ResolvedEnv:
    """The packages an MLflow model was logged with; pandas for the request formats that are frames."""
    if (folder / "requirements.txt").is_file():
        found = resolve_requirements((folder / "requirements.txt").read_text(encoding="utf-8"))
    elif (folder / "conda.yaml").is_file():
        found = resolve_conda(conda_mapping((folder / "conda.yaml").read_text(encoding="utf-8"), "conda.yaml"))
    else:
        found = ResolvedEnv(("mlflow-skinny",), None)
    reqs = [_skinny(r) for r in found.requirements]
    names = {re.split(r"[\s\[=<>~!;]", r, maxsplit=1)[0].lower() for r in reqs}
    if "mlflow-skinny" not in names:
        reqs.append("mlflow-skinny")
    if "pandas" not in names:
        reqs.append("pandas")
    return ResolvedEnv(tuple(reqs), _python(folder) or found.python, found.skipped)
