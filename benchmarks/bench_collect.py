"""What data collection costs the endpoint host: requests/s of one ONNX deployment with and without a
data_collector at sampling_rate 1.0 (model_inputs and model_outputs, as Azure's examples collect), loaded
with wrk.

Usage: python benchmarks/bench_collect.py [SECONDS] [ROUNDS]   (default 5 s, 6 rounds; needs wrk)

Both endpoints live in the same host process; the runs alternate (plain, collected, plain, …) so that the
machine's drift falls on both, and the medians are compared. The goal: under 10% fewer requests/s. The
converter process runs at a lower priority: under full load it takes what the host leaves, then catches up.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MLOPS, scratch
from bench_serving import wrk

REPO = Path(__file__).resolve().parents[1]
AZ = "https://azuremlschemas.azureedge.net/latest"
COLLECTOR = ("data_collector:\n  sampling_rate: 1.0\n  collections:\n    model_inputs: {enabled: 'True'}\n"
             "    model_outputs: {enabled: 'True'}\n")


def write_repo(repo: Path) -> None:
    def w(rel: str, text: str) -> None:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)

    shutil.copytree(REPO / "example-repo" / "models" / "cancer-onnx", repo / "models" / "onnx")
    w("mlops.yaml", "workspaces:\n  bench: {path: .mlops/bench, runtime: process}\ndefault_workspace: bench\n")
    w("models/onnx.yml", f"$schema: {AZ}/model.schema.json\nname: cancer-onnx\nversion: '1'\npath: ./onnx\n")
    limits = "request_settings: {max_concurrent_requests_per_instance: 64}\n"
    for name, extra in (("plain", ""), ("collected", COLLECTOR)):
        w(f"endpoints/{name}.yml", f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: {name}\n"
                                   "auth_mode: key\ntraffic: {main: 100}\n")
        w(f"deployments/{name}.yml", f"$schema: {AZ}/managedOnlineDeployment.schema.json\nname: main\n"
                                     f"endpoint_name: {name}\ninstance_type: local\nmodel: azureml:cancer-onnx:1\n"
                                     f"{limits}{extra}")


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    work = scratch("collect")
    repo = work / "repo"
    write_repo(repo)
    body = work / "body.json"
    shutil.copyfile(REPO / "example-repo" / "samples" / "request.json", body)
    subprocess.run([*MLOPS, "apply", str(repo), "--auto-approve"], check=True, stdout=subprocess.DEVNULL)
    try:
        host = json.loads((repo / ".mlops" / "bench" / "host.json").read_text())["url"]
        keys = {n: json.loads(subprocess.run([*MLOPS, "endpoint", "get-credentials", n, "-C", str(repo)],
                                             capture_output=True, text=True, check=True).stdout)["primaryKey"]
                for n in ("plain", "collected")}
        for name in keys:  # warm-up
            wrk(f"{host}/endpoints/{name}/score", body, {"Authorization": f"Bearer {keys[name]}"}, 32, 2)
        rps: dict[str, list[float]] = {"plain": [], "collected": []}
        for _ in range(rounds):
            for name in ("plain", "collected"):
                r = wrk(f"{host}/endpoints/{name}/score", body, {"Authorization": f"Bearer {keys[name]}"}, 32, seconds)
                assert r["errors"] == 0, f"{name}: {r['errors']:.0f} failed requests"
                rps[name].append(r["rps"])
                print(f"  {name:<10} {r['rps']:>9.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms", flush=True)
        plain, collected = statistics.median(rps["plain"]), statistics.median(rps["collected"])
        paired = statistics.median(c / p for p, c in zip(rps["plain"], rps["collected"], strict=True))
        rows = subprocess.run([*MLOPS, "data", "collected", "collected", "--format", "json", "-C", str(repo)],
                              capture_output=True, text=True, check=True).stdout
        written = sum(f["rows"] for f in json.loads(rows) if f["collection"] == "model_inputs")
        print(f"\nconcurrency 32, 2-row requests, {rounds} x {seconds} s each, medians:")
        print(f"  without data collection  {plain:>9.0f} req/s")
        print(f"  sampling_rate 1.0        {collected:>9.0f} req/s  ({(1 - collected / plain) * 100:+.1f}% cost; "
              f"goal under 10%)")
        print(f"  median of the rounds' ratios: {(1 - paired) * 100:+.1f}% cost (each collected run against the "
              "plain run just before it)")
        print(f"  model_inputs rows on disk: {written} (2 per request)")
    finally:
        subprocess.run([*MLOPS, "serve", "--stop", "-C", str(repo)], check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
