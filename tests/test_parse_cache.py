"""Parsed YAML kept between runs: used when a file's bytes are the same, never when they are not."""

from __future__ import annotations

import marshal
from pathlib import Path

from mlops_gitops.spec.parsecache import ParseCache, key_of
from mlops_gitops.spec.tree import load_tree
from tests.helpers import AZ, write

ENDPOINT = f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: churn\nauth_mode: key\n"


def tree(root: Path) -> Path:
    write(root / "mlops.yaml", "default_workspace: local\n")
    write(root / "endpoints" / "churn.yml", ENDPOINT)
    write(root / "endpoints" / "blue.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: blue\n"
                                           "instance_type: x\nmodel: {path: ./m.onnx}\n")
    (root / "endpoints" / "m.onnx").write_bytes(b"onnx")
    return root


def test_the_second_load_reads_the_cache_and_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    root = tree(tmp_path / "repo")
    first = load_tree(root)
    assert not first.diagnostics.has_errors(), first.diagnostics.sorted()
    cache = ParseCache(root)
    endpoint_key = key_of((root / "endpoints" / "churn.yml").read_bytes())
    assert endpoint_key in cache.entries and len(cache.entries) == 2
    # Proof that the cache answers: an entry changed by hand is what the next load sees.
    data, positions = marshal.loads(cache.entries[endpoint_key])
    cache.entries[endpoint_key] = marshal.dumps(({**data, "description": "from the cache"}, positions))
    cache.used, cache.added = dict(cache.entries), True
    cache.save()
    second = load_tree(root)
    assert second.documents["endpoints/churn.yml"].data["description"] == "from the cache"
    # The file changes: its bytes are another key, and it is parsed again.
    write(root / "endpoints" / "churn.yml", ENDPOINT + "description: edited\n")
    third = load_tree(root)
    assert third.documents["endpoints/churn.yml"].data["description"] == "edited"
    assert len(ParseCache(root).entries) == 2  # only what the last run used is kept


def test_what_the_tree_changes_after_parsing_is_not_cached(tmp_path: Path) -> None:
    root = tree(tmp_path / "repo")
    assert load_tree(root).documents["endpoints/blue.yml"].data["endpoint_name"] == "churn"  # inferred
    write(root / "endpoints" / "other.yml", ENDPOINT.replace("churn", "other"))
    again = load_tree(root)  # two endpoints in the folder now: nothing to infer, whatever was cached
    assert [d.code for d in again.diagnostics.sorted()] == ["REF004"]


def test_files_with_diagnostics_are_parsed_every_time(tmp_path: Path) -> None:
    root = tree(tmp_path / "repo")
    write(root / "endpoints" / "broken.yml", "name: [unclosed\n")
    for _ in range(2):
        diags = load_tree(root).diagnostics
        assert [d.code for d in diags.sorted()] == ["YAML001"]
    assert key_of((root / "endpoints" / "broken.yml").read_bytes()) not in ParseCache(root).entries


def test_a_cache_of_another_parser_or_a_damaged_file_is_ignored(tmp_path: Path) -> None:
    root = tree(tmp_path / "repo")
    load_tree(root)
    cache = ParseCache(root)
    cache.file.write_bytes(marshal.dumps(("another parser", cache.entries)))
    assert ParseCache(root).entries == {}
    cache.file.write_bytes(b"\x00not marshal")
    assert ParseCache(root).entries == {}
    assert not load_tree(root).diagnostics.has_errors()
