"""The pipeline compiler: a pipeline job's YAML -> typed steps with typed input sources, or the problems.

One compiler for every reader: validate reports its problems as diagnostics (with the file and line
of `loc`), plan previews and apply turn a clean result into runnable steps (resolving data and
environments, which is the backend's part). Components are looked up through a callback, so the
tree (validate) and the workspace (apply) can each say what a step runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_gitops import expressions
from mlops_gitops.graph import CycleError, Graph
from mlops_gitops.iotypes import DATA_TYPES, LiteralTypeError, check_literal, compatible
from mlops_gitops.spec.kinds.jobs import NOT_RUN_STEPS

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    code: str
    loc: Loc  # where in the pipeline's document
    message: str


@dataclass(frozen=True)
class Component:
    """What a step runs, as far as compiling it needs: its YAML and a label for records."""

    spec: dict[str, Any]
    label: str  # component:NAME:VERSION, step:NAME (an inline command), or the component's file
    file: str = ""  # its file in the tree, where known: the paths it writes are relative to it


@dataclass(frozen=True)
class Literal:
    value: Any  # already converted to the input's type; None: an optional input left out


@dataclass(frozen=True)
class Data:
    given: dict[str, Any]  # {type, path, mode, …} as written
    loc: str  # key of the value in the job's derived data: "inputs.raw" or "jobs.prep.inputs.raw"
    owner: str = ""  # label of the pipeline component that gives it ("": the job), whose files hold it


@dataclass(frozen=True)
class Upstream:
    step: str
    output: str


Source = Literal | Data | Upstream


@dataclass
class CompiledStep:
    name: str  # in the run: `outer.inner` for a step of a pipeline component
    spec: dict[str, Any]  # the step as written
    component: Component
    inputs: dict[str, tuple[str, Source]] = field(default_factory=dict)  # port -> (type, source)
    outputs: dict[str, str] = field(default_factory=dict)  # port -> type
    owner: Component | None = None  # the pipeline component whose `jobs` hold it; None: the job itself
    local: str = ""  # its name in its owner's `jobs`

    @property
    def upstream(self) -> set[str]:
        return {src.step for _, src in self.inputs.values() if isinstance(src, Upstream)}


@dataclass
class CompiledPipeline:
    name: str
    settings: dict[str, Any]
    steps: dict[str, CompiledStep] = field(default_factory=dict)
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)  # pipeline output -> (step, port)
    problems: list[Problem] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)  # steps of types the local workspace does not run

    @property
    def ok(self) -> bool:
        return not self.problems


# (step name, the step as written, the pipeline component holding it or None) -> what the step runs
FindComponent = Callable[[str, dict[str, Any], Component | None], Component | None]
MAX_NESTING = 8


def inline_component(step_name: str, step: dict[str, Any]) -> Component:
    """An inline command step declares its ports by binding them: outputs and data are folders unless typed."""
    inputs: dict[str, Any] = {}
    for name, value in _mapping(step.get("inputs")).items():
        bound = expressions.binding(value)
        if isinstance(value, dict):
            inputs[name] = {"type": value.get("type", "uri_folder")}
        elif bound is not None and bound.direction == "outputs":
            inputs[name] = {"type": "uri_folder"}
        else:
            inputs[name] = {"type": "string"}
    outputs = {name: {"type": (value.get("type") if isinstance(value, dict) else None) or "uri_folder"}
               for name, value in _mapping(step.get("outputs")).items()}
    return Component({**step, "inputs": inputs, "outputs": outputs}, f"step:{step_name}")


def _unfold(step: Any) -> Any:
    if not isinstance(step, dict) or not isinstance(step.get("foreign"), dict):
        return step
    return {**step["foreign"], **{k: v for k, v in step.items() if k != "foreign"}}


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _ports(spec: dict[str, Any], direction: str) -> dict[str, dict[str, Any]]:
    # A malformed component (its own schema error is reported elsewhere) declares no ports.
    return {str(k): _mapping(v) for k, v in _mapping(spec.get(direction)).items()}


class _Compiler:
    def __init__(self, name: str, spec: dict[str, Any], find: FindComponent, owner: Component | None = None,
                 parent_sources: dict[str, tuple[str, Source]] | None = None, prefix: str = "",
                 depth: int = 0) -> None:
        self.spec = spec
        self.find = find
        self.out = CompiledPipeline(name, dict(spec.get("settings") or {}))
        self.declared: dict[str, dict[str, str]] = {}  # step -> its outputs' types (None: unknown component)
        self.unknown: set[str] = set()
        # A pipeline component expanded into the run: its steps are named prefix + name, and its
        # `${{parent.inputs.x}}` are what the step that uses it was given.
        self.owner, self.parent_sources, self.prefix, self.depth = owner, parent_sources, prefix, depth
        self.nested: dict[str, dict[str, tuple[str, str]]] = {}  # step -> its outputs, as (inner step, port)

    def problem(self, code: str, loc: Loc, message: str) -> None:
        self.out.problems.append(Problem(code, loc, message))

    def run(self) -> CompiledPipeline:
        steps: dict[str, Any] = self.spec.get("jobs") or {}
        if not steps and isinstance(self.spec.get("component"), str):  # a pipeline job running a pipeline component
            steps = {"": {"type": "pipeline", "component": self.spec["component"],
                          "inputs": {k: f"${{{{parent.inputs.{k}}}}}" for k in _mapping(self.spec.get("inputs"))},
                          "outputs": {k: f"${{{{parent.outputs.{k}}}}}" for k in _mapping(self.spec.get("outputs"))}}}
        # a step type's own fields, as the job's model keeps them (`foreign`), back where the YAML has them
        steps = {name: _unfold(step) for name, step in steps.items()}
        components: dict[str, Component] = {}
        for name, step in steps.items():
            step = step if isinstance(step, dict) else {}
            step_type = str(step.get("type", "command")).lower()
            if step_type == "parallel" and isinstance(step.get("task"), dict):  # the mini-batch engine runs it
                parallel = components[name] = inline_component(name, step)
                self.declared[name] = {port: str(p.get("type", "uri_folder"))
                                       for port, p in _ports(parallel.spec, "outputs").items()}
                continue
            if step_type in NOT_RUN_STEPS:  # Azure runs it; what it outputs is not known here
                self.out.not_run[self.prefix + name] = step_type
                self.unknown.add(name)
                continue
            found = self.find(name, step, self.owner) if step.get("component") is not None else None
            if found is None and step.get("component") is None:
                found = inline_component(name, step) if step.get("command") else None
                if found is None:
                    self.problem("BIND007", ("jobs", name), f"step '{name}' names neither a component nor a command")
            if found is None:
                self.unknown.add(name)
                continue
            components[name] = found
            outputs = {port: str(p.get("type", "uri_folder")) for port, p in _ports(found.spec, "outputs").items()}
            for port, value in _mapping(step.get("outputs")).items():  # a step may type an output it binds
                if port not in outputs and found.label.startswith("step:"):
                    outputs[port] = str((value or {}).get("type", "uri_folder")) if isinstance(value, dict) \
                        else "uri_folder"
            self.declared[name] = outputs
        for name, comp in components.items():
            compiled = self._step(name, steps[name], comp)
            if str(comp.spec.get("type", "command")).lower() == "pipeline":
                self._expand(name, compiled)
            else:
                self.out.steps[self.prefix + name] = compiled
        self._rewire()
        self._order()
        return self.out

    def _expand(self, name: str, step: CompiledStep) -> None:
        """A step that runs a pipeline component: its steps join the run as `name.inner`."""
        if self.depth >= MAX_NESTING:
            self.problem("BIND004", ("jobs", name), f"step '{name}': pipeline components nest more than "
                                                    f"{MAX_NESTING} deep (does one use itself?)")
            return
        inner = _Compiler(step.component.label, step.component.spec, self.find, step.component, step.inputs,
                          f"{self.prefix}{name}." if name else self.prefix, self.depth + 1).run()
        for p in inner.problems:
            where = f"step '{name}' ({step.component.label})" if name else step.component.label
            self.out.problems.append(Problem(p.code, ("jobs", name) if name else ("component",),
                                             f"{where}: {p.message}"))
        self.out.steps.update(inner.steps)
        self.out.not_run.update(inner.not_run)
        self.nested[self.prefix + name] = inner.outputs
        for port, target in _mapping(step.spec.get("outputs")).items():
            bound = expressions.binding(target.get("path") if isinstance(target, dict) else target)
            if bound is not None and bound.scope == "outputs" and port in inner.outputs:
                self.out.outputs[bound.name] = inner.outputs[port]

    def _rewire(self) -> None:
        """Bindings to a step that was a pipeline component go to the inner step that makes the output."""
        if not self.nested:
            return
        for step in self.out.steps.values():
            for port, (type_, source) in list(step.inputs.items()):
                if isinstance(source, Upstream) and source.step in self.nested:
                    target = self.nested[source.step].get(source.output)
                    if target is not None:
                        step.inputs[port] = (type_, Upstream(*target))
    def _step(self, name: str, step: dict[str, Any], comp: Component) -> CompiledStep:
        compiled = CompiledStep(self.prefix + name, step, comp, outputs=dict(self.declared[name]), owner=self.owner,
                                local=name)
        declared_inputs = _ports(comp.spec, "inputs")
        bound_inputs: dict[str, Any] = step.get("inputs") or {}
        for port in bound_inputs:
            if port not in declared_inputs:
                self.problem("BIND002", ("jobs", name, "inputs", port),
                             f"step '{name}' binds input '{port}' that its component does not declare "
                             f"({', '.join(sorted(declared_inputs)) or 'none'})")
        for port, port_spec in declared_inputs.items():
            type_ = str(port_spec.get("type", "string"))
            source = self._input(name, port, type_, port_spec, port in bound_inputs, bound_inputs.get(port))
            if source is not None:
                compiled.inputs[port] = (type_, source)
        for port, target in _mapping(step.get("outputs")).items():
            loc = ("jobs", name, "outputs", port)
            if port not in compiled.outputs:
                self.problem("BIND002", loc, f"step '{name}' binds output '{port}' that its component does not "
                                             f"declare ({', '.join(sorted(compiled.outputs)) or 'none'})")
                continue
            value = target.get("path") if isinstance(target, dict) else target
            bound = expressions.binding(value)
            if bound is not None and bound.scope == "outputs":
                if bound.name not in _ports(self.spec, "outputs"):
                    declared = ", ".join(sorted(_ports(self.spec, "outputs"))) or "none"
                    self.problem("BIND001", loc, f"'{bound}': the pipeline has no output '{bound.name}' "
                                                 f"(declared: {declared})")
                self.out.outputs[bound.name] = (self.prefix + name, port)
            elif expressions.find(str(value or "")):
                self.problem("BIND001", loc, f"'{value}' is not a binding an output can take "
                                             "(${{parent.outputs.NAME}})")
        # a component in its own file is checked as that file (or was, before it was registered)
        command = step.get("command") or (comp.spec.get("command") if isinstance(step.get("component"), dict) else None)
        if isinstance(command, str):
            self.commands(command, set(declared_inputs), set(compiled.outputs), ("jobs", name, "command"))
        return compiled

    def commands(self, command: str, inputs: set[str], outputs: set[str], loc: Loc) -> None:
        check_command(command, inputs, outputs, loc, self.out.problems)

    def _input(self, step: str, port: str, type_: str, port_spec: dict[str, Any], is_bound: bool,
               bound: Any) -> Source | None:
        loc: Loc = ("jobs", step, "inputs", port)
        if not is_bound or bound is None:
            if port_spec.get("default") is not None:
                return self._literal(step, port, type_, port_spec["default"], loc)
            if port_spec.get("optional"):
                return Literal(None)
            self.problem("BIND003", ("jobs", step), f"step '{step}' does not bind required input '{port}' of its "
                                                     "component (and it has no default)")
            return None
        value = bound.get("path") if isinstance(bound, dict) and expressions.whole(bound.get("path")) else bound
        expr = expressions.whole(value)
        if expr is None:
            return self._given(step, port, type_, bound, f"jobs.{step}.inputs.{port}", loc)
        b = expressions.binding(value)
        if b is None or b.scope == "outputs" or (b.scope == "jobs" and b.direction != "outputs"):
            self.problem("BIND001", loc, f"'{expr}' is not a binding this pipeline can resolve "
                                         "(${{parent.inputs.NAME}} or ${{parent.jobs.STEP.outputs.NAME}})")
            return None
        if b.scope == "inputs" and self.parent_sources is not None:  # what the step using this component gave
            return self._from_parent(b.name, step, port, type_, loc)
        if b.scope == "inputs":
            parent_inputs = self.spec.get("inputs") or {}
            if b.name not in parent_inputs:
                declared = ", ".join(sorted(parent_inputs)) or "none"
                self.problem("BIND001", loc, f"'{b}': the pipeline has no input '{b.name}' (declared: {declared})")
                return None
            return self._given(step, port, type_, parent_inputs[b.name], f"inputs.{b.name}", ("inputs", b.name))
        if b.name not in self.declared and b.name not in self.unknown:
            self.problem("BIND001", loc, f"'{b}': there is no step '{b.name}'")
            return None
        if b.name in self.unknown:  # its component could not be read: what it outputs is not known here
            return Upstream(self.prefix + b.name, b.port)
        outputs = self.declared[b.name]
        if b.port not in outputs:
            self.problem("BIND001", loc, f"'{b}': step '{b.name}' has no output '{b.port}' "
                                         f"(outputs: {', '.join(sorted(outputs)) or 'none'})")
            return None
        if not compatible(outputs[b.port], type_):
            self.problem("BIND005", loc, f"step '{step}': input '{port}' is {type_} but output '{b.port}' of step "
                                         f"'{b.name}' is {outputs[b.port]}")
            return None
        return Upstream(self.prefix + b.name, b.port)

    def _from_parent(self, name: str, step: str, port: str, type_: str, loc: Loc) -> Source | None:
        assert self.parent_sources is not None
        given = self.parent_sources.get(name)
        if given is None:
            declared = _ports(self.spec, "inputs").get(name)
            if declared is None:
                self.problem("BIND001", loc, f"'${{{{parent.inputs.{name}}}}}': the pipeline component has no input "
                                             f"'{name}'")
                return None
            return Literal(None)  # optional and not given (a required one was reported where it is used)
        given_type, source = given
        if isinstance(source, Literal) or given_type not in DATA_TYPES or type_ not in DATA_TYPES \
                or compatible(given_type, type_):
            return source
        self.problem("BIND005", loc, f"step '{step}': input '{port}' is {type_} but the component's input "
                                     f"'{name}' is {given_type}")
        return None

    def _given(self, step: str, port: str, type_: str, given: Any, key: str, loc: Loc) -> Source | None:
        if isinstance(given, dict):
            path = given.get("path")
            if path is None:
                default = given.get("default", given.get("value"))
                return Literal(None) if default is None else self._literal(step, port, type_, default, loc)
            if type_ not in DATA_TYPES:
                self.problem("BIND005", loc, f"step '{step}': input '{port}' is {type_} but is given data ({path})")
                return None
            return Data(given, key, self.owner.label if self.owner is not None else "")
        return self._literal(step, port, type_, given, loc)

    def _literal(self, step: str, port: str, type_: str, value: Any, loc: Loc) -> Source | None:
        try:
            return Literal(check_literal(step, port, type_, value))
        except LiteralTypeError as exc:
            self.problem("BIND006", loc, str(exc))
            return None

    def _order(self) -> None:
        graph: Graph[str] = Graph()
        for name, step in self.out.steps.items():
            graph.add(name, sorted(step.upstream & set(self.out.steps)))
        try:
            graph.order()
        except CycleError as exc:
            self.problem("BIND004", ("jobs",), f"pipeline '{self.out.name}': steps depend on each other in a cycle: "
                                               f"{exc}")


def check_command(command: str, inputs: set[str], outputs: set[str], loc: Loc, problems: list[Problem]) -> None:
    """CMD001: a command's `${{inputs.x}}` / `${{outputs.y}}` name ports that exist."""
    for expr in expressions.find(command):
        parts = expr.parts
        if len(parts) == 2 and parts[0] in ("inputs", "outputs"):
            ports = inputs if parts[0] == "inputs" else outputs
            if parts[1] not in ports:
                problems.append(Problem("CMD001", loc, f"command uses '{expr}' but there is no {parts[0][:-1]} "
                                                       f"'{parts[1]}'"))


def compile_pipeline(name: str, spec: dict[str, Any], find: FindComponent) -> CompiledPipeline:
    """Compile a pipeline job (or pipeline component) spec; look at `.problems` before running it."""
    return _Compiler(name, spec, find).run()
