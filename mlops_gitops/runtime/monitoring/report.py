"""A monitor run's report: Markdown (for pull requests, issues and mails) and a self-contained HTML page with
each feature's distributions (inline SVG: no script, no stylesheet or font from elsewhere) and drift scores.

Both read the run as it is recorded: {schedule, id, status, message, signals: [SignalResult.to_dict()], data}.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

WIDTH, HEIGHT, PAD = 360, 120, 4


def lineage(facts: dict[str, Any]) -> str:
    """How a reference found through lineage was found, as a clause."""
    found = facts.get("reference_found_through")
    if not found:
        return ""
    return f"; the training data of {found['model']} (run {found['run']}), which {found['deployment']} serves"


def markdown(run: dict[str, Any]) -> str:
    lines = [f"## Monitor {run['schedule']}: {run['status']}", "", f"Run `{run['id']}`.", ""]
    if run.get("message"):
        lines += [f"**Failed:** {run['message']}", ""]
    for s in run["signals"]:
        d = run["data"].get(s["signal"], {})
        lines += [f"### {s['signal']} ({s['type']}): {'passed' if s['passed'] else 'breached'}", "",
                  f"Reference `{d.get('reference')}` ({s['rows']['reference']} rows{lineage(d)}) against production "
                  f"`{d.get('production')}` ({s['rows']['production']} rows).", "",
                  "| feature | type | metric | value | threshold | |", "|---|---|---|---|---|---|"]
        for f in s["features"]:
            if f["error"]:
                lines.append(f"| {f['feature']} | {f['kind']} | — | — | — | {f['error']} |")
            for metric, limit in f["checked"].items():
                mark = "breached" if metric in f["breached"] else "ok"
                lines.append(f"| {f['feature']} | {f['kind']} | {metric} | {f['metrics'][metric]:.4g} | "
                             f"{limit:g} | {mark} |")
        ranked = [f for f in s["features"] if f.get("importance") is not None]
        if ranked:
            lines += ["", "Features ranked by importance (mutual information with the target, nats): "
                      + ", ".join(f"{f['feature']} {f['importance']:.3g}" for f in ranked) + "."]
        lines.append("")
    return "\n".join(lines) + "\n"


def bars(distribution: dict[str, Any]) -> dict[str, Any]:
    """The SVG geometry of one feature's plot: per bin or category a reference bar and a production bar."""
    ref, prod = distribution.get("reference") or [], distribution.get("production") or []
    if not ref:
        return {}
    top = max(max(ref), max(prod), 1e-9)
    slot = (WIDTH - 2 * PAD) / len(ref)
    bar = max(slot / 2 - 1, 0.5)
    out = []
    for i, (r, p) in enumerate(zip(ref, prod, strict=True)):
        x = PAD + i * slot
        rh, ph = (HEIGHT - 2 * PAD) * r / top, (HEIGHT - 2 * PAD) * p / top
        if "labels" in distribution:
            label = str(distribution["labels"][i])
        else:
            label = f"{distribution['edges'][i]:.4g} to {distribution['edges'][i + 1]:.4g}"
        out.append({"x": round(x, 2), "w": round(bar, 2), "ref_y": round(HEIGHT - PAD - rh, 2), "ref_h": round(rh, 2),
                    "prod_x": round(x + bar + 1, 2), "prod_y": round(HEIGHT - PAD - ph, 2), "prod_h": round(ph, 2),
                    "title": f"{label}: reference {r:.1%}, production {p:.1%}"})
    axis = ([f"{distribution['edges'][0]:.4g}", f"{distribution['edges'][-1]:.4g}"] if "edges" in distribution
            else [])
    return {"bars": out, "axis": axis, "labels": distribution.get("labels") or []}


def html(run: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(files("mlops_gitops").joinpath("templates/monitor_report.html.j2")
                               .read_text(encoding="utf-8"))
    return template.render(run=run, bars=bars, lineage=lineage, width=WIDTH, height=HEIGHT)
