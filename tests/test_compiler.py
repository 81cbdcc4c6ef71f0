"""The pipeline compiler (spec/compiler.py): the one reading of a pipeline that validate and apply share."""

from __future__ import annotations

from typing import Any

from mlops_gitops.spec.compiler import Component, Data, Literal, Upstream, compile_pipeline

PREP = {"inputs": {"raw": {"type": "uri_file"}, "n": {"type": "integer", "default": 3}},
        "outputs": {"clean": {"type": "uri_folder"}}, "command": "prep ${{inputs.raw}} ${{outputs.clean}}"}
TRAIN = {"inputs": {"data": {"type": "uri_folder"}, "lr": {"type": "number"},
                    "tag": {"type": "string", "optional": True}},
         "outputs": {"model": {"type": "mlflow_model"}}, "command": "train ${{inputs.data}}"}


def finder(**components: dict[str, Any]) -> Any:
    def find(_name: str, step: dict[str, Any], _within: Component | None) -> Component | None:
        spec = components.get(str(step.get("component")))
        return Component(spec, f"component:{step['component']}") if spec is not None else None
    return find


def pipeline(**jobs: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": {"raw": {"type": "uri_file", "path": "data/raw.csv"}, "rate": 0.1},
            "outputs": {"final": {"type": "mlflow_model"}}, "jobs": jobs}


def codes(compiled: Any) -> list[str]:
    return sorted(p.code for p in compiled.problems)


def test_sources_are_typed() -> None:
    spec = pipeline(
        prep={"component": "prep", "inputs": {"raw": "${{parent.inputs.raw}}"}},
        train={"component": "train", "inputs": {"data": "${{parent.jobs.prep.outputs.clean}}", "lr": "0.5"},
               "outputs": {"model": "${{parent.outputs.final}}"}},
    )
    out = compile_pipeline("p", spec, finder(prep=PREP, train=TRAIN))
    assert out.ok, out.problems
    prep, train = out.steps["prep"], out.steps["train"]
    assert prep.inputs["raw"] == ("uri_file", Data({"type": "uri_file", "path": "data/raw.csv"}, "inputs.raw"))
    assert prep.inputs["n"] == ("integer", Literal(3))  # the component's default
    assert train.inputs["data"] == ("uri_folder", Upstream("prep", "clean"))
    assert train.inputs["lr"] == ("number", Literal(0.5))  # converted to the input's type
    assert train.inputs["tag"] == ("string", Literal(None))  # optional, left out
    assert train.upstream == {"prep"}
    assert out.outputs == {"final": ("train", "model")}


def test_type_mismatches_are_bind005_and_bind006() -> None:
    spec = pipeline(
        prep={"component": "prep", "inputs": {"raw": "${{parent.inputs.raw}}", "n": "four"}},
        train={"component": "train", "inputs": {"data": "${{parent.jobs.prep.outputs.clean}}",
                                                "lr": "${{parent.jobs.prep.outputs.clean}}"}},
    )
    out = compile_pipeline("p", spec, finder(prep=PREP, train=TRAIN))
    assert codes(out) == ["BIND005", "BIND006"]
    messages = " | ".join(p.message for p in out.problems)
    assert "input 'n' is integer but got 'four'" in messages
    assert "input 'lr' is number but output 'clean' of step 'prep' is uri_folder" in messages


def test_data_given_to_a_scalar_input_is_bind005() -> None:
    spec = pipeline(train={"component": "train", "inputs": {"data": {"type": "uri_folder", "path": "d"},
                                                            "lr": {"type": "uri_file", "path": "x.csv"}}})
    out = compile_pipeline("p", spec, finder(train=TRAIN))
    assert codes(out) == ["BIND005"]
    assert out.problems[0].loc == ("jobs", "train", "inputs", "lr")


def test_step_with_neither_component_nor_command_is_bind007() -> None:
    out = compile_pipeline("p", pipeline(lost={"inputs": {}}), finder())
    assert codes(out) == ["BIND007"] and "'lost'" in out.problems[0].message


def test_unknown_component_is_left_to_reference_rules() -> None:
    """A component that cannot be read here (REF rules report it) does not cascade into binding errors."""
    spec = pipeline(
        prep={"component": "missing"},
        train={"component": "train", "inputs": {"data": "${{parent.jobs.prep.outputs.whatever}}", "lr": 1}},
    )
    out = compile_pipeline("p", spec, finder(train=TRAIN))
    assert out.ok, out.problems
    assert out.steps["train"].inputs["data"] == ("uri_folder", Upstream("prep", "whatever"))


def test_inline_command_checks_its_placeholders_and_cycles() -> None:
    spec = pipeline(
        a={"command": "echo ${{inputs.x}} ${{outputs.nope}}", "inputs": {"x": "${{parent.jobs.b.outputs.o}}"},
           "outputs": {"o": {"type": "uri_folder"}}},
        b={"command": "echo", "inputs": {"x": "${{parent.jobs.a.outputs.o}}"}, "outputs": {"o": None}},
    )
    out = compile_pipeline("p", spec, finder())
    assert codes(out) == ["BIND004", "CMD001"]
    cmd = next(p for p in out.problems if p.code == "CMD001")
    assert cmd.loc == ("jobs", "a", "command") and "outputs.nope" in cmd.message


def test_component_commands_are_not_checked_again() -> None:
    """A component's own file is where its command is checked; the pipeline does not repeat the finding."""
    broken = {**PREP, "command": "prep ${{inputs.nope}}"}
    spec = pipeline(prep={"component": "prep", "inputs": {"raw": "${{parent.inputs.raw}}"}})
    assert compile_pipeline("p", spec, finder(prep=broken)).ok
    inline = pipeline(prep={"component": broken, "inputs": {"raw": "${{parent.inputs.raw}}"}})
    out = compile_pipeline("p", inline, lambda _n, s, _w: Component(s["component"], "inline component"))
    assert codes(out) == ["CMD001"]


def test_a_pipeline_component_step_expands_into_its_steps() -> None:
    inner = {"type": "pipeline", "inputs": {"data": {"type": "uri_folder"}, "n": {"type": "integer", "default": 3}},
             "outputs": {"model": {"type": "uri_folder"}},
             "jobs": {"fit": {"component": "fit", "inputs": {"data": "${{parent.inputs.data}}",
                                                             "n": "${{parent.inputs.n}}"},
                              "outputs": {"model": "${{parent.outputs.model}}"}}}}
    fit = {"command": "fit", "inputs": {"data": {"type": "uri_folder"}, "n": {"type": "integer"}},
           "outputs": {"model": {"type": "uri_folder"}}}
    prep = {"command": "prep", "inputs": {"raw": {"type": "uri_file"}}, "outputs": {"clean": {"type": "uri_folder"}}}
    use = {"command": "use", "inputs": {"m": {"type": "uri_folder"}}}
    spec = pipeline(prep={"component": "prep", "inputs": {"raw": "${{parent.inputs.raw}}"}},
                    training={"type": "pipeline", "component": "inner",
                              "inputs": {"data": "${{parent.jobs.prep.outputs.clean}}", "n": 7},
                              "outputs": {"model": "${{parent.outputs.final}}"}},
                    use={"component": "use", "inputs": {"m": "${{parent.jobs.training.outputs.model}}"}})
    spec["outputs"] = {"final": {"type": "uri_folder"}}
    out = compile_pipeline("p", spec, finder(prep=prep, inner=inner, fit=fit, use=use))
    assert out.ok, out.problems
    assert sorted(out.steps) == ["prep", "training.fit", "use"]
    fit_step = out.steps["training.fit"]
    assert fit_step.inputs["data"] == ("uri_folder", Upstream("prep", "clean"))  # the outer binding, passed in
    assert fit_step.inputs["n"] == ("integer", Literal(7))
    assert fit_step.local == "fit" and fit_step.owner is not None
    assert out.steps["use"].inputs["m"] == ("uri_folder", Upstream("training.fit", "model"))  # rewired inside
    assert out.outputs == {"final": ("training.fit", "model")}


def test_a_pipeline_job_can_run_a_pipeline_component_by_name() -> None:
    inner = {"type": "pipeline", "inputs": {"raw": {"type": "uri_file"}},
             "jobs": {"prep": {"component": "prep", "inputs": {"raw": "${{parent.inputs.raw}}"}}}}
    prep = {"command": "prep", "inputs": {"raw": {"type": "uri_file"}}}
    out = compile_pipeline("p", {"component": "inner", "inputs": {"raw": {"type": "uri_file", "path": "x.csv"}}},
                           lambda _n, step, _w: Component({"inner": inner, "prep": prep}[step["component"]],
                                                          str(step["component"])))
    assert out.ok, out.problems
    assert list(out.steps) == ["prep"]  # the component's steps, not prefixed
    source = out.steps["prep"].inputs["raw"][1]
    assert isinstance(source, Data) and source.loc == "inputs.raw" and source.owner == ""
