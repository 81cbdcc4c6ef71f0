"""ONNX conversion declared in Git (x-gitops.convert): converted at apply in an environment built for it,
checked for parity on a sample, measured, and registered only when within its tolerance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import AZ, Result, built_once, commit_all, init_repo, write

pytestmark = pytest.mark.slow
Cli = Callable[..., Result]

TRAIN = """
import csv, sys
from pathlib import Path
import joblib, numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
out = Path(sys.argv[1])
X, y = load_breast_cancer(return_X_y=True)
with open(out / "train.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([f"f{i}" for i in range(X.shape[1])] + ["target"])
    w.writerows([*row, label] for row, label in zip(X.tolist(), y.tolist()))
(out / "lr").mkdir()
joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), out / "lr" / "model.joblib")
binned = X.copy()
binned[:, 0] = np.digitize(binned[:, 0], [10, 13, 16, 20])  # a categorical feature: skl2onnx cannot convert it
(out / "hgb").mkdir()
joblib.dump(HistGradientBoostingClassifier(categorical_features=[0], max_iter=20).fit(binned, y),
            out / "hgb" / "model.joblib")
import lightgbm
(out / "lgbm").mkdir()
joblib.dump(lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, y), out / "lgbm" / "model.joblib")
"""


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models as a training job leaves them (joblib pickles), made in an environment with scikit-learn; once for
    all workers of the run."""
    from uv import find_uv_bin

    def build(root: Path) -> None:
        venv = root / "venv"
        uv = find_uv_bin()
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=300)
        subprocess.run([uv, "pip", "install", "-q", "scikit-learn", "joblib", "lightgbm"], check=True, timeout=600,
                       env={**os.environ, "VIRTUAL_ENV": str(venv)})
        (root / "models").mkdir()
        subprocess.run([str(venv / "bin" / "python"), "-c", TRAIN, str(root / "models")], check=True, timeout=300)

    return built_once(tmp_path_factory, "trained-models", build) / "models"


def conversion(name: str, source: str, max_abs_diff: str = "1e-5", extra: str = "") -> str:
    return (f"$schema: {AZ}/model.schema.json\nname: {name}\ndescription: converted\nx-gitops:\n  convert:\n"
            f"    from: azureml:{source}:1\n{extra}    sample:\n      data: azureml:cancer-train:1\n      rows: 100\n"
            f"      drop_columns: [target]\n    tolerance:\n      max_abs_diff: {max_abs_diff}\n"
            "      min_label_agreement: 1.0\n")


def tree(root: Path, trained: Path) -> Path:
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev}\ndefault_workspace: dev\n")
    write(root / "data" / "train.csv", (trained / "train.csv").read_text())
    write(root / "data" / "train.yml", f"$schema: {AZ}/data.schema.json\nname: cancer-train\nversion: '1'\n"
                                       "type: uri_file\npath: ./train.csv\n")
    for name in ("lr", "hgb", "lgbm"):
        (root / "models" / name).mkdir(parents=True)
        (root / "models" / name / "model.joblib").write_bytes((trained / name / "model.joblib").read_bytes())
        write(root / "models" / f"{name}.yml", f"$schema: {AZ}/model.schema.json\nname: cancer-{name}\n"
                                               f"version: '1'\npath: ./{name}\n")
    write(root / "models" / "lr-onnx.yml", conversion("cancer-lr-onnx", "cancer-lr"))
    write(root / "models" / "lgbm-onnx.yml", conversion("cancer-lgbm-onnx", "cancer-lgbm", "1e-4",
                                                        "    requirements: [lightgbm]\n"))  # through onnxmltools
    return init_repo(root)


def test_a_declared_conversion_is_converted_checked_and_registered_or_refused(cli: Cli, tmp_path: Path,
                                                                               trained: Path) -> None:
    repo = tree(tmp_path / "repo", trained)
    plan = cli("plan", cwd=repo)
    assert plan.code == 0, plan.err
    assert "the ONNX conversion of cancer-lr:1, checked for parity at apply" in plan.out
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 0, res.out + res.err
    assert "converted model:cancer-lr:1 with skl2onnx" in res.err
    shown = json.loads(cli("model", "show", "cancer-lr-onnx:1", cwd=repo).out)
    props = shown["properties"]
    assert props["converted_from"] == "cancer-lr:1" and props["onnx.parity.label_agreement"] == 1.0
    assert props["onnx.parity.max_abs_diff"] <= 1e-5 and props["onnx.parity.rows"] == 100
    assert props["onnx.latency_ms.onnx_1_row"] > 0 and props["onnx.latency_ms.source_1_row"] > 0
    assert {f["path"] for f in shown["files"]} == {"model.onnx", "conversion_report.json"}
    boosted = json.loads(cli("model", "show", "cancer-lgbm-onnx:1", cwd=repo).out)["properties"]
    assert boosted["onnx.converter"] == "onnxmltools" and boosted["onnx.source_estimator"].startswith("lightgbm.")
    assert boosted["onnx.parity.label_agreement"] == 1.0
    # the converted model is a real ONNX model: onnxruntime loads it and answers like the source
    import onnxruntime as ort

    out = tmp_path / "downloaded"
    assert cli("model", "download", "cancer-lr-onnx:1", "--dir", str(out), cwd=repo).code == 0
    session = ort.InferenceSession(str(next(out.rglob("model.onnx"))), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [None, 30]
    # nothing changed: no new conversion; the plan's Markdown shows the measured parity
    again = cli("plan", "--format", "markdown", cwd=repo)
    assert "No changes" in again.out or "no changes" in again.out.lower()
    assert "**ONNX conversions**" in again.out and "100.0% (≥ 100%)" in again.out
    # a changed tolerance is a new converted version (the declaration is content)
    write(repo / "models" / "lr-onnx.yml", conversion("cancer-lr-onnx", "cancer-lr", "1e-4"))
    commit_all(repo, "Looser tolerance")
    changed = cli("plan", cwd=repo)
    assert "model:cancer-lr-onnx:2 will be created" in changed.out
    _refusals(cli, repo)


def _refusals(cli: Cli, repo: Path) -> None:
    """Parity outside the tolerance, and a model the converter cannot convert: nothing is registered."""
    write(repo / "models" / "lr-onnx.yml", conversion("cancer-lr-onnx", "cancer-lr", "1e-12"))
    write(repo / "models" / "hgb-onnx.yml", conversion("cancer-hgb-onnx", "cancer-hgb"))
    commit_all(repo, "Too tight, and a model skl2onnx cannot convert")
    res = cli("apply", "--auto-approve", cwd=repo)
    assert res.code == 1
    text = res.out + res.err
    assert "outside its tolerance on 100 sample rows: largest absolute difference" in text
    assert "> max_abs_diff 1e-12; nothing was registered" in text
    assert "skl2onnx cannot convert HistGradientBoostingClassifier" in text  # the converter's own reason
    assert "Traceback" not in text
    listed = cli("model", "list", cwd=repo).out
    assert "cancer-hgb-onnx" not in listed
    assert [line.split()[1] for line in listed.splitlines() if line.startswith("cancer-lr-onnx ")] == ["1"]
    # ad hoc: the report, printed; nothing registered; exit 1 when outside the tolerance asked for
    adhoc = cli("model", "convert", "cancer-lr:1", "--sample-data", "azureml:cancer-train:1", "--drop-column",
                "target", "--max-abs-diff", "1e-12", "--format", "json", cwd=repo)
    assert adhoc.code == 1, adhoc.err
    report = json.loads(adhoc.out)
    assert report["label_agreement"] == 1.0 and report["latency_ms"]["onnx_1000_rows"] > 0
    assert report["within_tolerance"] is False and "max_abs_diff 1e-12" in report["outside_tolerance"][0]
    assert [line.split()[1] for line in cli("model", "list", cwd=repo).out.splitlines()
            if line.startswith("cancer-lr-onnx ")] == ["1"]


def test_the_default_sample_is_the_training_data_of_the_source_models_run(cli: Cli, example: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """example-repo's pipeline trains the classifier (its scikit-learn pickle among the outputs): converting
    that version needs no sample named, the run's own training data is drawn from."""
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    for folder in ("endpoints", "deployments", "monitors"):  # only the training side: nothing to serve here
        shutil.rmtree(example / folder)
    write(example / "models" / "trained-sklearn.yml", (
        f"$schema: {AZ}/model.schema.json\nname: cancer-trained-sklearn\n"
        "path: azureml://jobs/train-cancer-classifier/outputs/trained_model/paths/sklearn\n"))
    write(example / "models" / "trained-onnx.yml", (
        f"$schema: {AZ}/model.schema.json\nname: cancer-trained-converted\nx-gitops:\n  convert:\n"
        "    from: azureml:cancer-trained-sklearn@latest\n    sample:\n      rows: 50\n      drop_columns: [target]\n"
        "    tolerance: {max_abs_diff: 1e-4}\n"))
    commit_all(example, "Convert the trained pipeline")
    res = cli("apply", "--auto-approve", cwd=example)
    assert res.code == 0, res.out + res.err
    props = json.loads(cli("model", "show", "cancer-trained-converted:1", cwd=example).out)["properties"]
    assert props["converted_from"] == "cancer-trained-sklearn:1"
    assert props["onnx.parity.rows"] == 50 and props["onnx.parity.label_agreement"] == 1.0
