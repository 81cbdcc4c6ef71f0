"""Schedules of the local workspace that fire (an effect): due occurrences found, claimed once, run.

`run_due(now)` fires each enabled schedule's latest occurrence that is due and not fired yet; older ones
it stands for (missed while nothing ran) are counted with it, never fired. The claim is a row keyed by
(schedule, occurrence): a second runner (a CI cron job beside an endpoint host) finds it taken and moves
on. `create_job` runs the job the schedule names (a job of the workspace, by name or by its file in the
tree) as a pipeline run that reuses unchanged steps; `create_monitor` runs the monitor (monitors.py).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from mlops_gitops.actor import now as stamp
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import db
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import NotFoundError, WorkspaceError
from mlops_gitops.state import ActualResource
from mlops_gitops.triggers import Trigger, TriggerError


@dataclass
class Fired:
    schedule: str
    occurrence: str
    status: str  # completed | failed | not_run | taken (another runner has it)
    missed: int = 0
    run_id: str | None = None
    message: str = ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Schedules:
    def __init__(self, store: LocalStore, hooks: Hooks, datastores: Any = None) -> None:
        self.store = store
        self.hooks = hooks
        self.datastores = datastores

    def all(self) -> list[ActualResource]:
        if not self.store.has_state():
            return []
        snap = self.store.read()
        return sorted((r for a, r in snap.resources.items() if a.kind is Kind.SCHEDULE and r.status == "active"),
                      key=lambda r: r.address.name)

    def get(self, name: str) -> ActualResource:
        found = self.store.get(Address(Kind.SCHEDULE, name)) if self.store.has_state() else None
        if found is None:
            raise NotFoundError(f"no schedule '{name}' in the workspace (`mlops-gitops schedule list`)")
        return found

    def fires(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        self.store.ensure()
        with self.store.reading() as conn:
            rows = conn.execute(select(db.schedule_fires).where(db.schedule_fires.c.schedule == name)
                                .order_by(db.schedule_fires.c.occurrence.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def last_occurrence(self, name: str) -> datetime | None:
        fired = self.fires(name, 1)
        return _parse(fired[0]["occurrence"]) if fired else None

    def next_time(self, schedule: ActualResource, now: datetime) -> datetime | None:
        try:
            trigger = Trigger.parse(schedule.spec.get("trigger") or {})
        except TriggerError:
            return None
        return next(iter(trigger.after(max(now, self._since(schedule)))), None)

    def _since(self, schedule: ActualResource) -> datetime:
        """Occurrences after this count: after the last one fired, else after the schedule was created here."""
        return self.last_occurrence(schedule.address.name) or _parse(schedule.created_at)

    # -- firing ------------------------------------------------------------------------------------

    def run_due(self, now: datetime, fired_by: str = "run-due") -> list[Fired]:
        out = []
        for schedule in self.all():
            if schedule.spec.get("is_enabled", True) is False:
                continue
            try:
                trigger = Trigger.parse(schedule.spec.get("trigger") or {})
            except TriggerError as exc:  # validate says so too; recorded once here, where it stops firing
                self.hooks.warn(f"{schedule.address}: {exc}")
                continue
            due, missed = trigger.due(self._since(schedule), now)
            if due is not None:
                out.append(self.fire(schedule, _iso(due), missed, fired_by))
        return out

    def trigger(self, name: str, now: datetime) -> Fired:
        """`schedule trigger NAME`: fire now, whatever the trigger says (recorded as an occurrence of now)."""
        return self.fire(self.get(name), _iso(now), 0, "trigger")

    def fire(self, schedule: ActualResource, occurrence: str, missed: int, fired_by: str) -> Fired:
        name = schedule.address.name
        self.store.ensure()
        try:
            with self.store.writing() as conn:
                conn.execute(insert(db.schedule_fires).values(
                    schedule=name, occurrence=occurrence, fired_at=stamp(), status="firing", fired_by=fired_by,
                    missed=missed))
        except (IntegrityError, WorkspaceError) as exc:
            if isinstance(exc, WorkspaceError) and "UNIQUE" not in str(exc).upper() and "duplicate" not in str(exc):
                raise
            return Fired(name, occurrence, "taken", missed, message="another runner fired this occurrence")
        fired = self._run(schedule, occurrence, missed)
        with self.store.writing() as conn:
            conn.execute(update(db.schedule_fires).where(db.schedule_fires.c.schedule == name,
                                                         db.schedule_fires.c.occurrence == occurrence)
                         .values(status=fired.status, run_id=fired.run_id, message=fired.message))
        self.hooks.emit("schedule.fired", str(schedule.address), {
            "schedule": name, "occurrence": occurrence, "status": fired.status, "missed": missed,
            "run": fired.run_id, "message": fired.message or None})
        return fired

    def _run(self, schedule: ActualResource, occurrence: str, missed: int) -> Fired:
        name = schedule.address.name
        if schedule.spec.get("create_monitor") is not None:
            from mlops_gitops.backends.local.monitors import Monitors

            run = Monitors(self.store, self.hooks).run(schedule)
            return Fired(name, occurrence, "failed" if run.status == "failed" else "completed", missed, run.id,
                         run.message or f"monitor {run.status}")
        try:
            job = self._job(schedule)
            run_id, status = self._run_job(job, {"schedule": name, "schedule.occurrence": occurrence})
        except WorkspaceError as exc:
            return Fired(name, occurrence, "failed", missed, message=str(exc))
        return Fired(name, occurrence, "completed" if status == "completed" else "failed", missed, run_id,
                     "" if status == "completed" else f"run {run_id} {status}")

    def _job(self, schedule: ActualResource) -> ActualResource:
        given = schedule.spec.get("create_job")
        if not isinstance(given, str):
            raise WorkspaceError(f"{schedule.address}: an inline create_job runs on Azure ML; locally a schedule "
                                 "runs a job of the tree: name its file (create_job: ./pipeline.yml)")
        snap = self.store.read()
        if given.startswith("azureml:"):
            found = snap.resources.get(Address(Kind.JOB, given[len("azureml:"):]))
        else:
            rel = posixpath.normpath(posixpath.join(posixpath.dirname(schedule.source_file or ""), given))
            found = next((r for a, r in snap.resources.items() if a.kind is Kind.JOB and r.source_file == rel), None)
        if found is None:
            raise WorkspaceError(f"{schedule.address}: create_job {given} is not a job applied to the workspace "
                                 "(apply its file first: a job file of the tree)")
        return found

    def _run_job(self, job: ActualResource, snapshot: dict[str, Any]) -> tuple[str, str]:
        from mlops_gitops.backends.local.pipelines import PipelineResolver, run_pipeline
        from mlops_gitops.runtime.pipelines.steps import PipelineError

        try:
            pipeline = PipelineResolver(self.store, self.hooks, datastores=self.datastores).resolve(
                job.address.name, job.spec, job.derived, list(job.files), job.source_file or "")
        except PipelineError as exc:
            raise WorkspaceError(f"{job.source_file}: {exc}") from None
        run_id, result = run_pipeline(self.store, self.hooks, pipeline, snapshot)
        return run_id, result.status
