"""A resolved pipeline as plain data: steps, their input values, reuse keys and rendered commands.

The backend resolves YAML (components, environments, data assets, bindings) into these; the runner
only executes them. A step's reuse key covers everything that can change its outputs: the command,
the code's content, the environment, every input's value or content hash and the outputs declared —
so an unchanged step is reused, as `dvc repro` skips an unchanged stage.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DATA_TYPES = frozenset({"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"})
SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})
EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.S)


class PipelineError(Exception):
    """A pipeline that cannot be resolved or run as written."""


@dataclass(frozen=True)
class FileEntry:
    rel: str
    sha256: str
    size: int
    source: Path  # where to read it now (the tree, or the content-addressed store)


def manifest_digest(files: list[FileEntry] | tuple[FileEntry, ...]) -> str:
    text = json.dumps(sorted((f.rel, f.sha256) for f in files))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Input:
    """One step input: a literal, data (files), or an upstream step's output."""

    kind: Literal["literal", "data", "output"]
    type: str
    value: Any = None  # literal
    files: tuple[FileEntry, ...] = ()  # data
    origin: str = ""  # data: e.g. "data:breast-cancer-train:2"
    step: str = ""  # output: upstream step name
    output: str = ""  # output: its output name


@dataclass
class Step:
    name: str
    command: str  # template with ${{inputs.x}}, ${{outputs.y}} and $[[optional]] sections
    code: tuple[FileEntry, ...] = ()
    env_key: str = "host"  # digest of the resolved environment
    env: Any = None  # what the backend needs to build it (opaque here)
    inputs: dict[str, Input] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # name -> type
    environment_variables: dict[str, str] = field(default_factory=dict)
    deterministic: bool = True
    timeout_s: int | None = None
    component: str = ""  # e.g. "component:prep_data:1", for records

    @property
    def upstream(self) -> set[str]:
        return {i.step for i in self.inputs.values() if i.kind == "output"}

    def key(self, upstream_outputs: dict[tuple[str, str], str]) -> str:
        """The reuse key, given the content digests of the upstream outputs this step reads."""
        inputs: dict[str, Any] = {}
        for name, inp in sorted(self.inputs.items()):
            if inp.kind == "literal":
                inputs[name] = ["literal", inp.value]
            elif inp.kind == "data":
                inputs[name] = ["data", manifest_digest(inp.files)]
            else:
                inputs[name] = ["data", upstream_outputs[(inp.step, inp.output)]]
        doc = {"command": self.command, "code": manifest_digest(self.code), "env": self.env_key,
               "inputs": inputs, "outputs": sorted(self.outputs.items()),
               "environment_variables": sorted(self.environment_variables.items())}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Pipeline:
    name: str
    steps: dict[str, Step]
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)  # pipeline output -> (step, output)
    force_rerun: bool = False
    source_file: str = ""

    def order(self) -> list[str]:
        from mlops_gitops.graph import CycleError, Graph

        graph: Graph[str] = Graph()
        for name, step in self.steps.items():
            graph.add(name, sorted(step.upstream))
        try:
            return graph.order()
        except CycleError as exc:
            raise PipelineError(f"pipeline '{self.name}': steps depend on each other in a cycle: {exc}") from None


def render_command(template: str, values: dict[str, str | None]) -> str:
    """Fill ${{inputs.x}} / ${{outputs.y}}; drop $[[…]] sections whose inputs are not given."""

    def optional(m: re.Match[str]) -> str:
        inner = m.group(1)
        needed = EXPR.findall(inner)
        return inner if all(values.get(n) is not None for n in needed) else ""

    text = OPTIONAL.sub(optional, template)

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise PipelineError(f"the command uses '${{{{{name}}}}}', which is not an input or output of the step")
        value = values[name]
        if value is None:
            raise PipelineError(f"the command needs '${{{{{name}}}}}' but no value was given and it has no default")
        return shlex.quote(value)

    return EXPR.sub(fill, text)


def literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # what Azure ML passes for booleans
    return str(value)


def check_literal(step: str, port: str, type_: str, value: Any) -> Any:
    """A literal for a typed input, or PipelineError saying why it does not fit."""
    def bad() -> PipelineError:
        return PipelineError(f"step '{step}': input '{port}' is {type_} but got {value!r}")

    if type_ == "integer":
        if isinstance(value, bool):
            raise bad()
        try:
            if isinstance(value, float) and not value.is_integer():
                raise bad()
            return int(value)
        except (TypeError, ValueError):
            raise bad() from None
    if type_ == "number":
        if isinstance(value, bool):
            raise bad()
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad() from None
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise bad()
    if type_ in DATA_TYPES:
        raise PipelineError(f"step '{step}': input '{port}' is {type_} (data) but got the literal {value!r}")
    return str(value)


def compatible(output_type: str, input_type: str) -> bool:
    if output_type in SCALAR_TYPES or input_type in SCALAR_TYPES:
        return False  # outputs are data; a scalar input cannot take one
    return {output_type, input_type} != {"uri_file", "uri_folder"}
