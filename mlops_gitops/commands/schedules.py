"""`mlops-gitops schedule list|show|run-due|trigger|disable|enable`: schedules of the workspace that fire."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from mlops_gitops.actor import whoami
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_ERROR, EXIT_OK, capability, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError
from mlops_gitops.hashing import spec_hash
from mlops_gitops.textsafe import escape


def _schedules(backend: Any) -> Any:
    return capability(backend, "schedules", "fire schedules")


def _at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--at {text}: not an ISO 8601 time (2026-12-07T03:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def schedule_list(path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        sched = _schedules(backend)
        now = datetime.now(UTC)
        rows = [{"name": s.address.name, "enabled": s.spec.get("is_enabled", True) is not False,
                 "action": "create_monitor" if s.spec.get("create_monitor") is not None else "create_job",
                 "trigger": s.spec.get("trigger"),
                 "last": (sched.fires(s.address.name, 1) or [{}])[0].get("occurrence"),
                 "next": (n.isoformat(timespec="seconds") if (n := sched.next_time(s, now)) else None)}
                for s in sched.all()]
    if fmt == "json":
        out(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        out("No schedules.")
    for r in rows:
        state = "enabled " if r["enabled"] else "disabled"
        out(escape(f"{r['name']:<28} {state} {r['action']:<15} last {r['last'] or '-':<26} next {r['next'] or '-'}"))
    return EXIT_OK


def schedule_show(name: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        sched = _schedules(backend)
        found = sched.get(name)
        info = {"name": name, "enabled": found.spec.get("is_enabled", True) is not False,
                "trigger": found.spec.get("trigger"), "create_job": found.spec.get("create_job"),
                "create_monitor": found.spec.get("create_monitor") is not None,
                "next": (n.isoformat(timespec="seconds") if (n := sched.next_time(found, datetime.now(UTC))) else None),
                "fires": sched.fires(name)}
    out(json.dumps(info, indent=2, default=str))
    return EXIT_OK


def _report(fired: list[Any]) -> int:
    for f in fired:
        extra = f", {f.missed} earlier occurrence(s) missed" if f.missed else ""
        run = f" run {f.run_id}" if f.run_id else ""
        out(escape(f"{f.schedule} @ {f.occurrence}: {f.status}{run}{extra}" + (f" — {f.message}" if f.message else "")))
    return EXIT_ERROR if any(f.status == "failed" for f in fired) else EXIT_OK


def schedule_run_due(at: str | None = None, path: str = ".", workspace: str | None = None) -> int:
    moment = _at(at)
    with workspace_backend(open_project(path), workspace) as (_, backend):
        fired = _schedules(backend).run_due(moment)
    if not fired:
        out(f"Nothing due at {moment.isoformat(timespec='seconds')}.")
    return _report(fired)


def schedule_trigger(name: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        fired = _schedules(backend).trigger(name, datetime.now(UTC))
    return _report([fired])


def schedule_enable(name: str, enabled: bool = True, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend), backend.lock("schedule enable"):
        found = _schedules(backend).get(name)
        spec = {**found.spec, "is_enabled": enabled}
        backend.set_spec(found.address, spec, spec_hash({"spec": spec, "derived": found.derived}),
                         {"applied_by": whoami()})
    out(f"Schedule '{name}' {'enabled' if enabled else 'disabled'} (outside the repository: `mlops-gitops plan` "
        "will show it as drift)")
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops schedule list -C example-repo",
                  "mlops-gitops schedule run-due --at 2026-12-08T03:00:00Z -C example-repo")
    a = sub.add_parser("list", help="schedules, enabled or not, their last and next occurrence")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops schedule list -C example-repo",
                  "mlops-gitops schedule list --format json -C example-repo")
    a.set_defaults(run=schedule_list)
    a = sub.add_parser("show", help="a schedule: its trigger, next occurrence and what it fired")
    a.add_argument("name", metavar="NAME", help="the schedule's name")
    args.workspace(a)
    args.examples(a, "mlops-gitops schedule show cancer-drift -C example-repo")
    a.set_defaults(run=schedule_show)
    a = sub.add_parser("run-due", help="fire every schedule that is due (once per occurrence; for a cron CI job)")
    a.add_argument("--at", metavar="TIME", help="evaluate as if it were TIME (ISO 8601; default: now)")
    args.workspace(a)
    args.examples(a, "mlops-gitops schedule run-due -C example-repo",
                  "mlops-gitops schedule run-due --at 2026-12-08T03:00:00Z -C example-repo")
    a.set_defaults(run=schedule_run_due)
    a = sub.add_parser("trigger", help="fire a schedule now, whatever its trigger says")
    a.add_argument("name", metavar="NAME", help="the schedule's name")
    args.workspace(a)
    args.examples(a, "mlops-gitops schedule trigger cancer-drift -C example-repo")
    a.set_defaults(run=schedule_trigger)
    for action, enabled in (("disable", False), ("enable", True)):
        a = sub.add_parser(action, help=f"{action} a schedule outside Git (plan shows it as drift)")
        a.add_argument("name", metavar="NAME", help="the schedule's name")
        args.workspace(a)
        args.examples(a, f"mlops-gitops schedule {action} cancer-drift -C example-repo")
        a.set_defaults(run=schedule_enable, enabled=enabled)
