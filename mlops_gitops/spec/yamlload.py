"""Load YAML into plain Python values while remembering where every key and item sits.

ruamel's C-accelerated composer gives us a node tree with marks; we build the values
ourselves (instead of ruamel's round-trip loader, ~8x slower) and keep a table of
1-based (line, column) positions keyed by the path of each mapping key or sequence item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import BaseResolver
from ruamel.yaml.tag import Tag

try:
    from _ruamel_yaml import CParser
except ImportError:  # pragma: no cover - ruamel.yaml.clib missing
    CParser = None

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.fsutil import FileTooLargeError, NotRegularFileError, read_limited
from mlops_gitops.spec.parsecache import ParseCache, key_of

Loc = tuple[str | int, ...]

MAX_DEPTH = 100
MAX_NODES = 200_000  # guards against alias bombs ("billion laughs")
MAX_FILE_BYTES = 4 * 1024 * 1024  # resource files are small; a larger one is refused before it is read
_LEAD = re.compile(r"^[ ?-]*", re.M)  # indentation plus block indicators ("- - - x" nests on one line)


class _CoreResolver(BaseResolver):
    """YAML 1.2 core-schema tags for plain scalars, memoised: ruamel's version-aware resolver
    dominated load time (it re-derives its tables for every scalar)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            return _plain_tag(value) if implicit[0] else _TAGS["str"]
        return _TAGS["seq"] if kind is SequenceNode else _TAGS["map"]


_TAGS = {name: Tag(suffix=f"tag:yaml.org,2002:{name}") for name in ("str", "int", "float", "bool", "null", "seq",
                                                                     "map", "merge")}
_CORE = [
    ("null", re.compile(r"~|null|Null|NULL|")),
    ("bool", re.compile(r"true|True|TRUE|false|False|FALSE")),
    ("int", re.compile(r"[-+]?[0-9_]+|0o[0-7_]+|0x[0-9a-fA-F_]+")),
    ("float", re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?"
                         r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")),
    ("merge", re.compile(r"<<")),
]


@lru_cache(maxsize=4096)
def _plain_tag(value: str) -> Tag:
    for name, pattern in _CORE:
        if pattern.fullmatch(value):
            return _TAGS[name]
    return _TAGS["str"]


if CParser is not None:

    class _Loader(CParser, _CoreResolver):  # type: ignore[misc]
        """libyaml scanner, parser and composer in C; only tag resolution in Python."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _CoreResolver.__init__(self)


def _compose_all(text: str) -> list[Node]:
    if CParser is None:  # no libyaml: ruamel's pure-Python composer, same tags
        y = YAML(typ="safe", pure=True)
        y.Resolver = _CoreResolver
        return [n for n in y.compose_all(text) if n is not None]
    loader = _Loader(text)
    try:
        nodes = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


@dataclass
class Document:
    path: Path  # absolute
    rel: str  # repository-relative posix path, used in diagnostics
    data: Any
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def pos(self, loc: Loc) -> tuple[int, int]:
        """Position of the deepest known prefix of loc (the document start if none)."""
        loc = tuple(loc)
        while loc:
            if loc in self.positions:
                return self.positions[loc]
            loc = loc[:-1]
        return self.positions.get((), (1, 1))


class _BuildError(Exception):
    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.column = node.start_mark.column + 1


def _scalar(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        text = value.replace("_", "")
        try:
            if text.lower().startswith(("0x", "-0x", "+0x")):
                return int(text, 16)
            if text.lower().startswith(("0o", "-0o", "+0o")):
                return int(text.replace("o", "").replace("O", ""), 8)
            if text.lower().startswith(("0b", "-0b", "+0b")):
                return int(text, 2)
            return int(text)
        except ValueError:
            return value
    if tag == "tag:yaml.org,2002:float":
        low = value.lower().replace("_", "")
        if low in (".inf", "+.inf"):
            return float("inf")
        if low == "-.inf":
            return float("-inf")
        if low == ".nan":
            return float("nan")
        try:
            return float(low)
        except ValueError:
            return value
    # timestamps, binary and custom tags stay text: we never act on them as objects
    return value


class _Builder:
    def __init__(self) -> None:
        self.positions: dict[Loc, tuple[int, int]] = {}
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _BuildError("document is too large (too many nodes; an alias bomb?)", node)
        if len(loc) > MAX_DEPTH:
            raise _BuildError(f"nesting deeper than {MAX_DEPTH} levels", node)
        if isinstance(node, ScalarNode):
            return _scalar(node)
        if id(node) in self.active:
            raise _BuildError("recursive alias: a node contains itself", node)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, loc)
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
        finally:
            self.active.discard(id(node))
        raise _BuildError(f"unsupported YAML node {type(node).__name__}", node)

    def _sequence(self, node: SequenceNode, loc: Loc) -> list[Any]:
        out = []
        for i, item in enumerate(node.value):
            self.positions[(*loc, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            out.append(self.build(item, (*loc, i)))
        return out

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.update(self._merge_source(value_node, loc))
                continue
            if not isinstance(key_node, ScalarNode):
                raise _BuildError("mapping keys must be plain scalars", key_node)
            key = key_node.value if key_node.tag == "tag:yaml.org,2002:str" else str(_scalar(key_node))
            if key in out:
                raise _BuildError(f"duplicate key '{key}'", key_node)
            self.positions[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, (*loc, key))
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _merge_source(self, node: Node, loc: Loc) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for src in sources:
            value = self.build(src, loc)
            if not isinstance(value, dict):
                raise _BuildError("'<<' merge needs a mapping", src)
            for k, v in value.items():
                merged.setdefault(k, v)
        return merged


def _events(text: str) -> Any:
    if CParser is None:
        y = YAML(typ="safe", pure=True)
        yield from y.parse(text)
        return
    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def too_deep(text: str) -> tuple[int, int] | None:
    """Where the text nests collections deeper than MAX_DEPTH, found before anything recurses (libyaml's
    composer is recursive C: 30,000 levels in 60 KB crash the process). A cheap bound first: block nesting
    needs indentation or indicators, flow nesting needs a bracket per level; only a text that could be too
    deep is read as a stream of events, which never recurses."""
    leading = max((len(m.group(0)) for m in _LEAD.finditer(text)), default=0)
    if text.count("[") + text.count("{") + 2 * leading + 2 <= MAX_DEPTH:
        return None
    depth = 0
    try:
        for event in _events(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1, event.start_mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        return None  # the composer reports the syntax error, at a depth already known to be safe
    return None


def parse_text(text: str, rel: str, path: Path, diags: Diagnostics) -> Document | None:
    """Parse one YAML document; on failure add a YAML001 diagnostic and return None."""
    deep = too_deep(text)
    if deep is not None:
        diags.add(rel, deep[0], deep[1], "YAML001", f"malformed YAML: nesting deeper than {MAX_DEPTH} levels")
        return None
    try:
        nodes = _compose_all(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        diags.add(rel, line, col, "YAML001", f"malformed YAML: {problem}")
        return None
    except (YAMLError, ValueError, RecursionError) as exc:
        diags.add(rel, 1, 1, "YAML001", f"malformed YAML: {exc}")
        return None
    nodes = [n for n in nodes if n is not None]
    if len(nodes) > 1:
        line = nodes[1].start_mark.line + 1
        diags.add(rel, line, 1, "YAML002", "one resource per file: this file holds several YAML documents")
        return None
    if not nodes:
        return Document(path, rel, None, {(): (1, 1)})
    builder = _Builder()
    try:
        data = builder.build(nodes[0], ())
    except _BuildError as exc:
        diags.add(rel, exc.line, exc.column, "YAML001", f"malformed YAML: {exc}")
        return None
    builder.positions[()] = (nodes[0].start_mark.line + 1, nodes[0].start_mark.column + 1)
    return Document(path, rel, data, builder.positions)


def load_file(path: Path, rel: str, diags: Diagnostics, cache: ParseCache | None = None) -> Document | None:
    try:
        raw = read_limited(path, MAX_FILE_BYTES)
    except FileTooLargeError as exc:
        diags.add(rel, 1, 1, "YAML004", str(exc))
        return None
    except NotRegularFileError as exc:
        diags.add(rel, 1, 1, "YAML003", f"cannot read file: it is a {exc.kind}, not a regular file")
        return None
    except FileNotFoundError:
        diags.add(rel, 1, 1, "YAML003", "cannot read file: it is a link that leads nowhere"
                  if path.is_symlink() else "cannot read file: it does not exist")
        return None
    except OSError as exc:
        diags.add(rel, 0, 0, "YAML003", f"cannot read file: {exc.strerror or exc}")
        return None
    key = key_of(raw) if cache is not None else b""
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        return Document(path, rel, hit[0], hit[1])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        diags.add(rel, 1, 1, "YAML003", f"file is not UTF-8 text (byte {exc.start})")
        return None
    before = len(diags.items)
    doc = parse_text(text, rel, path, diags)
    if cache is not None and doc is not None and len(diags.items) == before:
        cache.put(key, (doc.data, doc.positions))
    return doc
