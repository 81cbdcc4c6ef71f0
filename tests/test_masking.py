"""Secrets are masked by key and by shape (credentials in URLs) in every output, with masks keyed per workspace."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from mlops_gitops.redact import Masker, mask_credentials
from tests.helpers import Result, copy_example, init_repo

Cli = Callable[..., Result]
SECRETS = ("hunter2", "s3cr3t", "sv=2024&sig=abcdef", "ghp_token123")


def with_secrets(example: Path) -> None:
    path = example / "deployments" / "cancer-green.yml"
    path.write_text(path.read_text() + "environment_variables:\n"
                    '  DATABASE_URL: "postgresql://app:hunter2@db.internal:5432/app"\n'
                    "  ODD_NAME: plain-value-1\n")
    model = example / "models" / "cancer-onnx.yml"
    lines = [line if not line.startswith("description:") else
             "description: 'mirror https://bob:s3cr3t@example.com/m?sv=2024&sig=abcdef and "
             "https://ghp_token123@github.com/x'" for line in model.read_text().splitlines()]
    model.write_text("\n".join(lines) + "\n")


def test_plans_mask_environment_variables_and_credentials_in_urls(cli: Cli, example: Path) -> None:
    with_secrets(example)
    for fmt in ("text", "json", "markdown"):
        res = cli("plan", str(example), "--format", fmt, "--show-all")
        assert res.code == 0, res.err
        for secret in (*SECRETS, "plain-value-1"):
            assert secret.split("&")[-1] not in res.out, (fmt, secret)
        assert "https://bob:***@example.com/m?sv=2024&sig=***" in res.out.replace("\\u0026", "&")
        assert "https://***@github.com/x" in res.out


def test_state_show_and_model_show_mask_too(cli: Cli, example: Path) -> None:
    with_secrets(example)
    assert cli("apply", str(example), "--auto-approve").code == 0
    for argv in (("state", "show", "online-deployment:cancer/green"), ("model", "show", "cancer-onnx:1")):
        res = cli(*argv, "-C", str(example))
        assert res.code == 0, res.err
        for secret in (*SECRETS, "plain-value-1"):
            assert secret.split("&")[-1] not in res.out, (argv, secret)
    shown = json.loads(cli("state", "show", "online-deployment:cancer/green", "-C", str(example)).out)
    assert shown["spec"]["environment_variables"]["ODD_NAME"].startswith("(sensitive ")


def masks_of(out: str) -> set[str]:
    return set(re.findall(r"\(sensitive [0-9a-f]+\)", out))


def change_odd_name(repo: Path) -> None:
    path = repo / "deployments" / "cancer-green.yml"
    path.write_text(path.read_text().replace("plain-value-1", "plain-value-2"))


def test_masks_are_keyed_per_workspace(cli: Cli, example: Path, tmp_path: Path) -> None:
    other = init_repo(copy_example(tmp_path / "other"))
    for repo in (example, other):
        with_secrets(repo)
        assert cli("apply", str(repo), "--auto-approve").code == 0
        change_odd_name(repo)
    first, again, elsewhere = (cli("plan", str(r)) for r in (example, example, other))
    shown = masks_of(first.out)
    assert len(shown) == 2, first.out  # before and after of ODD_NAME: a change stays visible, masked
    assert masks_of(again.out) == shown, "one workspace: equal values, equal masks"
    assert len(masks_of(elsewhere.out)) == 2 and not (masks_of(elsewhere.out) & shown), "another workspace's key"
    unsalted = hashlib.sha256(repr("plain-value-1").encode()).hexdigest()
    assert all(unsalted[:8] not in m for m in shown), "a mask cannot be confirmed by hashing a guess"


def test_masker_and_url_credentials() -> None:
    a, b = Masker(b"k1"), Masker(b"k2")
    assert a.value("x") == a.value("x") != b.value("x")
    assert mask_credentials("postgresql://u:p@h/db and s3://AKIAKEY@bucket") == \
        "postgresql://u:***@h/db and s3://***@bucket"
    assert mask_credentials("postgresql://app@db/x") == "postgresql://app@db/x", "a user name is not a secret"
    assert mask_credentials("https://h/x?a=1&token=abc&b=2") == "https://h/x?a=1&token=***&b=2"
    assert a.tree({"environment_variables": {"A": "1"}, "tags": {"api_key": "z", "ok": "v"}}) == {
        "environment_variables": {"A": a.value("1")}, "tags": {"api_key": a.value("z"), "ok": "v"}}
