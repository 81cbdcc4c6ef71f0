"""Every kind of the catalogue is recognised from its `$schema` and loads from a minimal valid file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_gitops.addresses import Kind
from mlops_gitops.spec.catalog import CATALOG
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.validate import validate_tree
from tests.helpers import AZ, write

MINIMAL = {
    "model": ("name: m\npath: ./f.bin\n", Kind.MODEL, "m"),
    "environment": ("name: e\nbuild: {path: ./ctx}\n", Kind.ENVIRONMENT, "e"),
    "data": ("name: d\ntype: uri_file\npath: ./f.bin\n", Kind.DATA, "d"),
    "commandComponent": ("name: c\ncommand: echo\nenvironment: {image: python}\n", Kind.COMPONENT, "c"),
    "pipelineComponent": ("name: pc\ntype: pipeline\njobs:\n  a: {command: echo, environment: {image: python}}\n",
                          Kind.COMPONENT, "pc"),
    "commandJob": ("name: cj\ncommand: echo hi\nenvironment: {image: python}\n", Kind.JOB, "cj"),
    "pipelineJob": ("type: pipeline\njobs:\n  a: {command: echo, environment: {image: python}}\n", Kind.JOB, "x"),
    "managedOnlineEndpoint": ("name: ep1\n", Kind.ONLINE_ENDPOINT, "ep1"),
    "kubernetesOnlineEndpoint": ("name: ep2\ncompute: azureml:k8s\n", Kind.ONLINE_ENDPOINT, "ep2"),
    "managedOnlineDeployment": ("name: dep\nendpoint_name: ep1\ninstance_type: Standard_F2s_v2\n",
                                Kind.ONLINE_DEPLOYMENT, "ep1/dep"),
    "kubernetesOnlineDeployment": ("name: dep\nendpoint_name: ep2\nresources: {requests: {cpu: '1'}}\n",
                                   Kind.ONLINE_DEPLOYMENT, "ep2/dep"),
    "batchEndpoint": ("name: be1\n", Kind.BATCH_ENDPOINT, "be1"),
    "batchDeployment": ("name: old\nendpoint_name: be1\nmodel: azureml:m:1\nmini_batch_size: 5\n",
                        Kind.BATCH_DEPLOYMENT, "be1/old"),
    "modelBatchDeployment": ("name: mbd\nendpoint_name: be1\nmodel: azureml:m@latest\n", Kind.BATCH_DEPLOYMENT,
                             "be1/mbd"),
    "pipelineComponentBatchDeployment": ("name: pbd\nendpoint_name: be1\ncomponent: azureml:pc@latest\n",
                                         Kind.BATCH_DEPLOYMENT, "be1/pbd"),
    "schedule": ("name: s\ntrigger: {type: cron, expression: '0 * * * *'}\ncreate_job: ./x.yml\n", Kind.SCHEDULE, "s"),
}


def test_every_catalogued_kind_has_a_case() -> None:
    assert set(MINIMAL) == set(CATALOG)


@pytest.mark.parametrize("schema_url", [AZ + "/{}.schema.json", "../schemas/{}.schema.json",
                                        "https://mlops-gitops.dev/schemas/{}.schema.json"])
def test_all_kinds_load_and_validate(tmp_path: Path, schema_url: str) -> None:
    (tmp_path / "f.bin").write_bytes(b"x")
    (tmp_path / "ctx").mkdir()
    for name, (body, _, _) in MINIMAL.items():
        write(tmp_path / f"{name}.yml" if name != "pipelineJob" else tmp_path / "x.yml",
              f"$schema: {schema_url.format(name)}\n{body}")
    tree = load_tree(tmp_path)
    diags = validate_tree(tree)
    assert diags.items == []
    got = {(r.kind, r.name) for r in tree.resources}
    assert got == {(kind, name) for _, kind, name in MINIMAL.values()}
