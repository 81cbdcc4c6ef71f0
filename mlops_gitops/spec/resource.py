"""A typed resource from the tree, with its identity and its outgoing links."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.kinds import VERSIONED
from mlops_gitops.spec.catalog import KindInfo
from mlops_gitops.spec.kinds.common import InlineEnvironment, InlineModel, Resource
from mlops_gitops.spec.references import parse_job_output
from mlops_gitops.spec.yamlload import Document, Loc


@dataclass(frozen=True)
class Link:
    """A value in one resource that points at something else: a resource or a local path."""

    loc: Loc
    role: str  # model, environment, code, path, conda_file, component, endpoint, deployment, job, data
    text: str
    target: Kind | None = None  # what an `azureml:` reference names; None for plain paths
    yaml_file: bool = False  # a path to another YAML file (component, job): not a resource itself


@dataclass
class SpecResource:
    info: KindInfo
    doc: Document
    model: Resource
    links: list[Link] = field(default_factory=list)

    @property
    def kind(self) -> Kind:
        return self.info.kind

    @property
    def file(self) -> str:
        return self.doc.rel

    @property
    def base_dir(self) -> Path:
        return self.doc.path.parent

    @property
    def name(self) -> str:
        m: Any = self.model
        if self.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT):
            return f"{m.endpoint_name}/{m.name}"
        if self.kind is Kind.JOB and not m.name:
            return job_name_from_path(self.doc.rel)
        return str(m.name)

    @property
    def version(self) -> str | None:
        return getattr(self.model, "version", None) if self.kind in VERSIONED else None

    @property
    def address(self) -> Address:
        """Identity; an auto-versioned asset has version None until plan assigns one."""
        return Address(self.kind, self.name, self.version)

    def pos(self, loc: Loc = ()) -> tuple[int, int]:
        return self.doc.pos(loc)


def _ref_or_path(loc: Loc, role: str, value: object, target: Kind, out: list[Link]) -> None:
    if isinstance(value, str):
        out.append(Link(loc, role, value, target if value.startswith("azureml:") else None))
    elif isinstance(value, InlineModel):
        out.append(Link((*loc, "path"), "path", value.path))
    elif isinstance(value, InlineEnvironment):
        _environment_paths(loc, value, out)


def _environment_paths(loc: Loc, env: Any, out: list[Link]) -> None:
    if isinstance(env.conda_file, str):
        out.append(Link((*loc, "conda_file"), "conda_file", env.conda_file, yaml_file=True))
    if env.build is not None:
        out.append(Link((*loc, "build", "path"), "code", env.build.path))


def _io_paths(loc: Loc, ports: dict[str, Any], out: list[Link]) -> None:
    for key, port in ports.items():
        path = getattr(port, "path", None)
        if isinstance(path, str) and not path.startswith("${{"):
            out.append(Link((*loc, key, "path"), "data", path, Kind.DATA if path.startswith("azureml:") else None))


def _steps(loc: Loc, jobs: dict[str, Any], out: list[Link]) -> None:
    for step_name, step in jobs.items():
        sloc = (*loc, step_name)
        if isinstance(step.component, str):
            _component_link((*sloc, "component"), step.component, out)
        if step.code:
            out.append(Link((*sloc, "code"), "code", step.code))
        if step.environment is not None:
            _ref_or_path((*sloc, "environment"), "environment", step.environment, Kind.ENVIRONMENT, out)
        _io_paths((*sloc, "inputs"), step.inputs, out)
        task = (step.foreign or {}).get("task") if step.type == "parallel" else None
        if isinstance(task, dict):  # a parallel step: its entry script's folder and environment
            if isinstance(task.get("code"), str):
                out.append(Link((*sloc, "task", "code"), "code", task["code"]))
            if isinstance(task.get("environment"), str):
                _ref_or_path((*sloc, "task", "environment"), "environment", task["environment"], Kind.ENVIRONMENT, out)


def _component_link(loc: Loc, comp: str, out: list[Link]) -> None:
    registered = comp.startswith("azureml:")
    out.append(Link(loc, "component", comp, Kind.COMPONENT if registered else None, yaml_file=not registered))


def job_name_from_path(rel: str) -> str:
    """A nameless job is known by its path within the tree, made to follow Azure's job-name rule
    (`jobs/basics/hello-world.yml` -> `jobs-basics-hello-world`): every `job.yml` of a repository differs."""
    stem = rel.rsplit(".", 1)[0] if rel.endswith((".yml", ".yaml")) else rel
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem.replace("/", "-")).strip("-_") or "job"
    return name[:255]


def compute_links(res: SpecResource) -> list[Link]:  # noqa: C901 - one branch per kind reads best
    m: Any = res.model
    out: list[Link] = []
    kind = res.kind
    convert = m.x_gitops.convert if kind is Kind.MODEL and m.x_gitops is not None else None
    explain = m.x_gitops.explain if kind is Kind.MODEL and m.x_gitops is not None else None
    if explain is not None:  # each version's feature importance is measured on this data asset
        out.append(Link(("x-gitops", "explain", "data"), "data", explain.data, Kind.DATA))
    if convert is not None:  # its files come from converting another model version, checked on a sample
        conv = ("x-gitops", "convert")
        out.append(Link((*conv, "from"), "model", convert.from_, Kind.MODEL))
        if convert.sample.data is not None:
            out.append(Link((*conv, "sample", "data"), "data", convert.sample.data, Kind.DATA))
    elif kind in (Kind.MODEL, Kind.DATA):
        if parse_job_output(m.path) is not None:  # produced by a pipeline job of the tree
            out.append(Link(("path",), "job_output", m.path, Kind.JOB))
        else:
            out.append(Link(("path",), "path", m.path))
    elif kind is Kind.ENVIRONMENT:
        _environment_paths((), m, out)
    elif kind is Kind.COMPONENT:
        if res.info.schema_name == "commandComponent":
            if m.code:
                out.append(Link(("code",), "code", m.code))
            for i, include in enumerate(m.additional_includes or []):  # copied beside the code at run time
                out.append(Link(("additional_includes", i), "code", include))
            _ref_or_path(("environment",), "environment", m.environment, Kind.ENVIRONMENT, out)
        else:
            _steps(("jobs",), m.jobs, out)
    elif kind is Kind.JOB:
        if res.info.schema_name == "commandJob":
            if m.code:
                out.append(Link(("code",), "code", m.code))
            _ref_or_path(("environment",), "environment", m.environment, Kind.ENVIRONMENT, out)
        else:
            _steps(("jobs",), m.jobs, out)
            if isinstance(m.component, str):  # a pipeline job that runs a pipeline component
                _component_link(("component",), m.component, out)
        _io_paths(("inputs",), m.inputs, out)
    elif kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT):
        endpoint_kind = Kind.ONLINE_ENDPOINT if kind is Kind.ONLINE_DEPLOYMENT else Kind.BATCH_ENDPOINT
        out.append(Link(("endpoint_name",), "endpoint", m.endpoint_name, endpoint_kind))
        if getattr(m, "model", None) is not None:
            _ref_or_path(("model",), "model", m.model, Kind.MODEL, out)
        if getattr(m, "environment", None) is not None:
            _ref_or_path(("environment",), "environment", m.environment, Kind.ENVIRONMENT, out)
        if getattr(m, "code_configuration", None) is not None:
            out.append(Link(("code_configuration", "code"), "code", m.code_configuration.code))
        component = getattr(m, "component", None)
        if isinstance(component, str):
            _component_link(("component",), component, out)
    elif kind is Kind.SCHEDULE:
        if isinstance(m.create_job, str):
            job = m.create_job
            out.append(Link(("create_job",), "job", job, Kind.JOB if job.startswith("azureml:") else None,
                            yaml_file=not job.startswith("azureml:")))
        monitor = m.create_monitor
        if monitor is not None and monitor.monitoring_target is not None:
            target = monitor.monitoring_target
            if target.endpoint_deployment_id:
                out.append(Link(("create_monitor", "monitoring_target", "endpoint_deployment_id"), "deployment",
                                target.endpoint_deployment_id, Kind.ONLINE_DEPLOYMENT))
            if target.model_id:
                out.append(Link(("create_monitor", "monitoring_target", "model_id"), "model", target.model_id,
                                Kind.MODEL))
    return out
