"""A small pipeline tree for tests: steps a -> b, and c beside them; each run is counted in a file."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import AZ, init_repo, write

A = """
import argparse, pathlib, sys
p = argparse.ArgumentParser()
p.add_argument("--raw"); p.add_argument("--n", type=int); p.add_argument("--out")
p.add_argument("--count"); p.add_argument("--wait-for", default="")
a = p.parse_args()
with open(a.count, "a") as f:
    f.write("a\\n")
if a.wait_for:  # proves c runs at the same time: c creates this file
    import time
    deadline = time.monotonic() + 60
    while not pathlib.Path(a.wait_for).exists():
        if time.monotonic() > deadline:
            sys.exit("c never ran alongside a")
        time.sleep(0.01)
rows = pathlib.Path(a.raw).read_text().splitlines()
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
(out / "rows.txt").write_text("\\n".join(rows[: a.n]) + "\\n")
print("a wrote", a.n, "rows")
"""

B = """
import argparse, json, pathlib
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--count"); p.add_argument("--flag", default=None)
a = p.parse_args()
with open(a.count, "a") as f:
    f.write("b\\n")
rows = (pathlib.Path(a.data) / "rows.txt").read_text().split()
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
(out / "metrics.json").write_text(json.dumps({"rows": len(rows), "flag": a.flag or "none"}))
(out / "first.txt").write_text(rows[0] + "\\n")
print("b counted", len(rows))
"""

C = """
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text("c was here")
with open(sys.argv[2], "a") as f:
    f.write("c\\n")
"""


def component(name: str, inputs: str, outputs: str, command: str) -> str:
    code = name.removeprefix("step_")  # each step its own code folder: editing one leaves the others' keys
    return (f"$schema: {AZ}/commandComponent.schema.json\nname: {name}\ntype: command\ncode: ../src/{code}\n"
            f"environment: azureml:py@latest\ninputs:\n{inputs}\noutputs:\n{outputs}\ncommand: >-\n  {command}\n")


def pipeline_tree(root: Path, counter: Path, wait_for: str = "", extra_step: str = "") -> Path:
    """The tree, committed in a new Git repository; `counter` gets one line per executed step."""
    write(root / "mlops.yaml", "workspaces:\n  dev: {path: .mlops/dev, runtime: process}\ndefault_workspace: dev\n"
                               "exclude: ['src/**', '**/conda*.yml', azure-pipelines.yml]\n")
    write(root / "environments" / "py.yml", f"$schema: {AZ}/environment.schema.json\nname: py\n"
                                            "image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
                                            "conda_file: ./conda.yml\n")
    write(root / "environments" / "conda.yml", "name: py\ndependencies:\n  - python=3.11\n")
    write(root / "data" / "rows.yml", f"$schema: {AZ}/data.schema.json\nname: rows\ntype: uri_file\n"
                                      "path: ./rows.csv\n")
    write(root / "data" / "rows.csv", "".join(f"row{i}\n" for i in range(10)))
    write(root / "src" / "a" / "a.py", A)
    write(root / "src" / "b" / "b.py", B)
    write(root / "src" / "c" / "c.py", C)
    wait = f" --wait-for {wait_for}" if wait_for else ""
    write(root / "components" / "a.yml", component(
        "step_a", "  raw: {type: uri_file}\n  n: {type: integer, default: 3}", "  out: {type: uri_folder}",
        f"python a.py --raw ${{{{inputs.raw}}}} --n ${{{{inputs.n}}}} --out ${{{{outputs.out}}}} --count {counter}"
        + wait))
    write(root / "components" / "b.yml", component(
        "step_b", "  data: {type: uri_folder}\n  flag: {type: string, optional: true}",
        "  result: {type: uri_folder}",
        f"python b.py --data ${{{{inputs.data}}}} --out ${{{{outputs.result}}}} --count {counter} "
        "$[[--flag ${{inputs.flag}}]]"))
    write(root / "components" / "c.yml", component(
        "step_c", "  marker: {type: string}", "  done: {type: uri_folder}",
        f"python c.py ${{{{inputs.marker}}}} {counter}"))
    jobs = ("  a:\n    component: ../components/a.yml\n    inputs:\n      raw: ${{parent.inputs.raw}}\n"
            "      n: ${{parent.inputs.n}}\n"
            "  b:\n    component: ../components/b.yml\n    inputs:\n      data: ${{parent.jobs.a.outputs.out}}\n"
            "    outputs:\n      result: ${{parent.outputs.result}}\n"
            f"  c:\n    component: ../components/c.yml\n    inputs:\n      marker: {wait_for or '/dev/null'}\n"
            + extra_step)
    write(root / "pipelines" / "p.yml", f"$schema: {AZ}/pipelineJob.schema.json\ntype: pipeline\nname: demo\n"
                                        "inputs:\n  raw:\n    type: uri_file\n    path: azureml:rows@latest\n  n: 4\n"
                                        f"outputs:\n  result: {{type: uri_folder}}\njobs:\n{jobs}")
    return init_repo(root, "A demo pipeline")


def executed(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []
