"""Schedules that fire: Azure's cron and recurrence triggers (Windows time zones too), `schedule run-due --at`
firing each due occurrence once (the latest of those missed), the claim that keeps two runners from firing
the same occurrence, trigger/disable/enable, the host firing what was missed, and SCHED001 for a trigger
that can never fire."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.triggers import Trigger, TriggerError
from tests.helpers import AZ, Result, commit_all, write
from tests.pipeline_helpers import executed, pipeline_tree

Cli = Callable[..., Result]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_cron_in_a_windows_time_zone_and_missed_occurrences() -> None:
    daily = Trigger.parse({"type": "cron", "expression": "0 3 * * *", "time_zone": "Pacific Standard Time"})
    due, missed = daily.due(at("2026-12-01T00:00:00"), at("2026-12-07T12:00:00"))
    assert due == at("2026-12-07T11:00:00") and missed == 6  # 03:00 in Los Angeles is 11:00 UTC
    assert daily.due(at("2026-12-07T11:00:00"), at("2026-12-07T12:00:00")) == (None, 0)  # fired already


def test_recurrence_patterns_and_the_trigger_window() -> None:
    weekly = Trigger.parse({"type": "recurrence", "frequency": "week", "interval": 2,
                            "start_time": "2026-11-02T00:00:00", "schedule": {"week_days": ["monday"], "hours": 9,
                                                                              "minutes": [0, 30]}})
    times = [t for _, t in zip(range(4), weekly.after(at("2026-11-01T00:00:00")), strict=False)]
    assert times == [at("2026-11-02T09:00:00"), at("2026-11-02T09:30:00"), at("2026-11-16T09:00:00"),
                     at("2026-11-16T09:30:00")]  # every other Monday from the start
    quarter = Trigger.parse({"type": "recurrence", "frequency": "minute", "interval": 15,
                             "start_time": "2026-12-07T10:00:00", "end_time": "2026-12-07T10:40:00"})
    assert list(quarter.after(at("2026-12-07T09:00:00"))) == [at("2026-12-07T10:00:00"), at("2026-12-07T10:15:00"),
                                                              at("2026-12-07T10:30:00")]


@pytest.mark.parametrize("trigger, message", [
    ({"type": "cron", "expression": "61 * * * *"}, "Bad minute"),
    ({"type": "cron", "expression": "0 0 31 2 *"}, "day-of-month"),
    ({"type": "cron", "expression": "* * * * *", "time_zone": "Mars Standard Time"}, "unknown time zone"),
    ({"type": "recurrence", "frequency": "day", "interval": 1, "start_time": "2026-12-07T00:00:00",
      "end_time": "2026-12-01T00:00:00"}, "is not after start_time"),
])
def test_a_trigger_that_cannot_fire_is_refused(trigger: dict, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        Trigger.parse(trigger)


def schedule(cron: str = "0 * * * *", extra: str = "") -> str:
    return (f"$schema: {AZ}/schedule.schema.json\nname: hourly\ntrigger:\n  type: cron\n  expression: '{cron}'\n"
            f"create_job: ../pipelines/p.yml\n{extra}")


def test_validate_names_the_trigger_that_never_fires(cli: Cli, tmp_path: Path) -> None:
    repo = pipeline_tree(tmp_path / "repo", tmp_path / "count.txt")
    write(repo / "schedules" / "hourly.yml", schedule("0 0 30 2 *"))
    res = cli("validate", cwd=repo)
    assert res.code == 1
    assert ("schedules/hourly.yml:3:1: error SCHED001: this schedule never fires: cron expression '0 0 30 2 *'"
            in res.out)


def test_run_due_fires_each_occurrence_once_and_two_runners_never_both(cli: Cli, tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    repo = pipeline_tree(tmp_path / "repo", counter)
    write(repo / "schedules" / "hourly.yml", schedule())
    commit_all(repo, "Run the pipeline every hour")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    assert executed(counter) == []  # runtime: none records the job; the schedule runs it
    first = cli("schedule", "run-due", "--at", "2030-01-01T00:30:00Z", cwd=repo)
    assert first.code == 0, first.out + first.err
    assert "hourly @ 2030-01-01T00:00:00+00:00: completed run demo-" in first.out
    assert "earlier occurrence(s) missed" in first.out  # every hour since the apply: fired once, as the latest
    ran = sorted(executed(counter))
    assert ran == ["a", "b", "c"]
    again = cli("schedule", "run-due", "--at", "2030-01-01T00:59:00Z", cwd=repo)
    assert "Nothing due" in again.out and sorted(executed(counter)) == ran
    # a second runner claiming an occurrence already claimed finds it taken, and runs nothing
    backend = LocalBackend(repo / ".mlops" / "dev")
    try:
        sched = backend.schedules
        taken = sched.fire(sched.get("hourly"), "2030-01-01T00:00:00+00:00", 0, "run-due")
        assert taken.status == "taken"
    finally:
        backend.close()
    later = cli("schedule", "run-due", "--at", "2030-01-01T01:00:00Z", cwd=repo)
    assert "hourly @ 2030-01-01T01:00:00+00:00: completed" in later.out  # its steps reused: nothing changed
    assert sorted(executed(counter)) == ran
    shown = json.loads(cli("schedule", "show", "hourly", cwd=repo).out)
    assert [f["occurrence"] for f in shown["fires"]] == ["2030-01-01T01:00:00+00:00", "2030-01-01T00:00:00+00:00"]
    assert shown["fires"][1]["missed"] > 0


def test_trigger_disable_enable_and_a_monitor_without_its_data(cli: Cli, tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    repo = pipeline_tree(tmp_path / "repo", counter)
    write(repo / "schedules" / "hourly.yml", schedule())
    write(repo / "schedules" / "drift.yml", (
        f"$schema: {AZ}/schedule.schema.json\nname: drift\ntrigger: {{type: recurrence, frequency: day, interval: 1}}\n"
        "create_monitor:\n  monitoring_signals:\n    d:\n      type: data_drift\n"))
    commit_all(repo, "Schedules")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    fired = cli("schedule", "trigger", "hourly", cwd=repo)
    assert fired.code == 0 and "completed run demo-" in fired.out
    assert cli("schedule", "disable", "hourly", cwd=repo).code == 0
    listed = json.loads(cli("schedule", "list", "--format", "json", cwd=repo).out)
    assert {r["name"]: r["enabled"] for r in listed} == {"drift": True, "hourly": False}
    due = cli("schedule", "run-due", "--at", "2030-01-01T00:30:00Z", cwd=repo)
    assert "hourly" not in due.out  # disabled: it does not fire
    # its monitor runs, and fails with the reason: it names no production data the workspace has
    assert due.code == 1 and "drift @ 2030-01-01T00:00:00+00:00: failed run drift-" in due.out
    assert "production_data: name a data asset" in due.out and "monitoring_target" in due.out
    drift = cli("plan", cwd=repo)
    assert "schedule:hourly was changed outside the repository" in drift.out
    assert cli("schedule", "enable", "hourly", cwd=repo).code == 0
    assert "schedule:hourly" not in cli("plan", cwd=repo).out


def test_the_endpoint_host_fires_what_was_missed_while_nothing_ran(cli: Cli, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import time

    from tests.serving_helpers import stop_host

    counter = tmp_path / "count.txt"
    repo = pipeline_tree(tmp_path / "repo", counter)
    write(repo / "schedules" / "hourly.yml", schedule())
    commit_all(repo, "Run the pipeline every hour")
    assert cli("apply", "--auto-approve", cwd=repo).code == 0
    ws = repo / ".mlops" / "dev"
    with sqlite3.connect(ws / "state.db") as conn:  # the schedule was applied three hours ago; nothing ran since
        conn.execute("UPDATE mg_resources SET created_at = ? WHERE kind = 'schedule'",
                     (datetime.fromtimestamp(time.time() - 3 * 3600, UTC).isoformat(),))
    monkeypatch.setenv("MLOPS_GITOPS_RUNTIME", "process")
    monkeypatch.setenv("MLOPS_GITOPS_SCHEDULE_INTERVAL_S", "0.2")
    try:
        assert cli("serve", cwd=repo).code == 0
        deadline = time.monotonic() + 60
        while not json.loads(cli("schedule", "show", "hourly", cwd=repo).out)["fires"]:  # the host's next round
            assert time.monotonic() < deadline, (ws / "logs" / "host.log").read_text()
            time.sleep(0.2)
        fires = json.loads(cli("schedule", "show", "hourly", cwd=repo).out)["fires"]
        assert len(fires) == 1 and fires[0]["fired_by"] == "host" and fires[0]["missed"] >= 2
        deadline = time.monotonic() + 60
        while fires[0]["status"] == "firing":
            assert time.monotonic() < deadline
            time.sleep(0.2)
            fires = json.loads(cli("schedule", "show", "hourly", cwd=repo).out)["fires"]
        assert fires[0]["status"] == "completed" and sorted(executed(counter)) == ["a", "b", "c"]
    finally:
        stop_host(ws)
