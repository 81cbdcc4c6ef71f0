"""Generate a tree of N metadata-only resource files (environments, endpoints, schedules, batch endpoints)."""

from __future__ import annotations

import sys
from pathlib import Path

AZ = "https://azuremlschemas.azureedge.net/latest"
KINDS = ("environment", "managedOnlineEndpoint", "schedule", "batchEndpoint")


def resource(kind: str, i: int) -> str:
    if kind == "environment":
        return (f"$schema: {AZ}/environment.schema.json\nname: env-{i:04d}\nversion: '1'\n"
                f"image: python:3.11-slim\ndescription: generated environment {i}\ntags: {{team: t{i % 7}}}\n")
    if kind == "managedOnlineEndpoint":
        return (f"$schema: {AZ}/managedOnlineEndpoint.schema.json\nname: ep-{i:04d}\nauth_mode: key\n"
                f"description: generated endpoint {i}\ntags: {{team: t{i % 7}, tier: gold}}\n")
    if kind == "schedule":
        return (f"$schema: {AZ}/schedule.schema.json\nname: sched-{i:04d}\ntrigger:\n  type: cron\n"
                f"  expression: '{i % 60} 3 * * *'\ncreate_job:\n  type: command\n  command: echo {i}\n"
                f"  environment: {{image: python}}\n")
    return (f"$schema: {AZ}/batchEndpoint.schema.json\nname: batch-{i:04d}\ndescription: generated batch {i}\n"
            f"tags: {{team: t{i % 7}}}\n")


def generate(root: Path, n: int) -> dict[str, list[Path]]:
    by_kind: dict[str, list[Path]] = {k: [] for k in KINDS}
    (root).mkdir(parents=True, exist_ok=True)
    (root / "mlops.yaml").write_text("default_workspace: local\n")
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        path = root / kind / f"r{i:04d}.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(resource(kind, i))
        by_kind[kind].append(path)
    return by_kind


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
