"""A resolved pipeline as plain data: steps, their input values, reuse keys and rendered commands.

The backend resolves YAML (components, environments, data assets, bindings) into these; the runner
only executes them. A step's reuse key covers everything that can change its outputs: the command,
the code's content, the environment, every input's value or content hash and the outputs declared —
so an unchanged step is reused, as `dvc repro` skips an unchanged stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlops_gitops import expressions
from mlops_gitops.fsutil import UnsafePathError, check_relative
from mlops_gitops.graph import CycleError, Graph
from mlops_gitops.kinds import PORT_NAME

# Input and output names (azure-ai-ml's IOConstants.VALID_KEY_PATTERN): also shell variable names.


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

    def check_names(self) -> None:
        """Names become folders and variables: a step name is one plain path component, ports are identifiers."""
        try:
            check_relative(self.name, "step name")
        except UnsafePathError as exc:
            raise PipelineError(str(exc)) from None
        if "/" in self.name:
            raise PipelineError(f"step name {self.name!r} holds '/'")
        for port in (*self.inputs, *self.outputs):
            if not PORT_NAME.accepts(port):
                raise PipelineError(f"step '{self.name}': {port!r} is not a valid input or output name "
                                    f"({PORT_NAME.description})")

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
    continue_on_step_failure: bool = False  # Azure's default: after a failure no further step starts
    notification: dict[str, Any] = field(default_factory=dict)  # the job's notification_setting (emails)

    def graph(self) -> Graph[str]:
        """The steps and what each reads from; a cycle is an error that names it."""
        for step in self.steps.values():
            step.check_names()
        graph: Graph[str] = Graph()
        for name, step in self.steps.items():
            graph.add(name, sorted(step.upstream))
        try:
            graph.sorter()
        except CycleError as exc:
            raise PipelineError(f"pipeline '{self.name}': steps depend on each other in a cycle: {exc}") from None
        return graph

    def order(self) -> list[str]:
        return self.graph().order()


@dataclass(frozen=True)
class BoundCommand:
    """A step's shell command with its inputs and outputs passed as environment variables."""

    command: str  # refers to "${AZURE_ML_INPUT_x}" where the template said ${{inputs.x}}
    env: dict[str, str]  # the values, never parsed as shell text


def variable_for(placeholder: str) -> str:
    """`inputs.x` -> AZURE_ML_INPUT_x (the variables Azure ML sets in a job), `outputs.y` -> AZURE_ML_OUTPUT_y."""
    direction, _, name = placeholder.partition(".")
    if direction not in ("inputs", "outputs") or not PORT_NAME.accepts(name):
        raise PipelineError(f"'${{{{{placeholder}}}}}' is not an input or output a command can use")
    return f"AZURE_ML_{'INPUT' if direction == 'inputs' else 'OUTPUT'}_{name}"


def render_command(template: str, values: dict[str, str | None]) -> BoundCommand:
    """Bind ${{inputs.x}} / ${{outputs.y}}; drop $[[…]] sections whose inputs are not given.

    Values never become shell text: each placeholder turns into a reference to an environment variable,
    written for the quoting context it stands in (unquoted: "${V}"; in double quotes: ${V}; in single
    quotes the quote is closed around "${V}"), so no value — `$(…)`, backticks, quotes, newlines — can run."""

    text = expressions.resolve_optional(template, lambda name: values.get(name) is not None)
    env: dict[str, str] = {}

    def bind(name: str) -> str:
        if name not in values:
            raise PipelineError(f"the command uses '${{{{{name}}}}}', which is not an input or output of the step")
        value = values[name]
        if value is None:
            raise PipelineError(f"the command needs '${{{{{name}}}}}' but no value was given and it has no default")
        if "\x00" in value:
            raise PipelineError(f"the value of '${{{{{name}}}}}' holds a NUL character")
        var = variable_for(name)
        env[var] = value
        return var

    return BoundCommand(_substitute(text, bind), env)


def _substitute(text: str, bind: Callable[[str], str]) -> str:
    """Replace each ${{…}} by a variable reference that fits the POSIX-shell quoting state at that point."""
    out: list[str] = []
    state = "plain"  # plain | single | double | ansi ($'…' in bash; dash reads it as '$' and a quote)
    i = 0
    while i < len(text):
        if text.startswith("${{", i):
            m = expressions.match_at(text, i)
            if m is None:
                out.append(text[i])
                i += 1
                continue
            var = bind(m.text)
            out.append({"plain": f'"${{{var}}}"', "double": f"${{{var}}}", "single": f"'\"${{{var}}}\"'",
                        "ansi": f"'\"${{{var}}}\"$'"}[state])
            i = m.end
            continue
        c = text[i]
        if c == "\\" and state in ("plain", "double", "ansi"):
            out.append(text[i:i + 2])
            i += 2
            continue
        if state == "plain":
            if text.startswith("$'", i):
                state, step = "ansi", 2
            elif c == "'":
                state, step = "single", 1
            elif c == '"':
                state, step = "double", 1
            else:
                step = 1
        elif (state in ("single", "ansi") and c == "'") or (state == "double" and c == '"'):
            state, step = "plain", 1
        else:
            step = 1
        out.append(text[i:i + step])
        i += step
    return "".join(out)


def literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # what Azure ML passes for booleans
    return str(value)
