"""MON001: a monitoring signal whose metric_thresholds name a metric Azure ML does not compute for it (or are
written in neither of Azure's forms). MAIL001 (a warning): emails to notify (a monitor's alert_notification,
a job's notification_setting) while mlops.yaml names no smtp server to send them through."""

from __future__ import annotations

from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Severity
from mlops_gitops.runtime.monitoring.metrics import SignalError, thresholds
from mlops_gitops.validate.context import RuleContext

LOCAL_TYPES = ("data_drift", "prediction_drift", "data_quality")


def _parts(given: Any) -> list[tuple[tuple[str | int, ...], Any]]:
    """metric_thresholds one metric at a time, each with its path, so that an error points at that metric."""
    if isinstance(given, list):
        return [((i, "metric_name") if isinstance(item, dict) and "metric_name" in item else (i,), [item])
                for i, item in enumerate(given)]
    if isinstance(given, dict) and all(isinstance(v, dict) for v in given.values()):
        return [((kind, metric), {kind: {metric: value}}) for kind, metrics in given.items()
                for metric, value in metrics.items()]
    return [((), given)]


def check(ctx: RuleContext) -> None:
    no_smtp = ctx.tree.config.smtp is None
    for res in ctx.tree.resources:
        spec = res.doc.data if isinstance(res.doc.data, dict) else {}
        if res.kind is Kind.SCHEDULE and isinstance(spec.get("create_monitor"), dict):
            monitor = spec["create_monitor"]
            for name, signal in (monitor.get("monitoring_signals") or {}).items():
                if not isinstance(signal, dict) or signal.get("type") not in LOCAL_TYPES:
                    continue
                where = ("create_monitor", "monitoring_signals", name, "metric_thresholds")
                for path, part in _parts(signal.get("metric_thresholds")):
                    try:
                        thresholds(str(signal["type"]), part)
                    except SignalError as exc:
                        ctx.report(res, where + path, "MON001", str(exc))
            if no_smtp and (monitor.get("alert_notification") or {}).get("emails"):
                ctx.report(res, ("create_monitor", "alert_notification", "emails"), "MAIL001",
                           "alert emails will not be sent: mlops.yaml has no smtp server (smtp: host, sender)",
                           Severity.WARNING)
        elif res.kind is Kind.JOB and no_smtp and (spec.get("notification_setting") or {}).get("emails"):
            ctx.report(res, ("notification_setting", "emails"), "MAIL001",
                       "job emails will not be sent: mlops.yaml has no smtp server (smtp: host, sender)",
                       Severity.WARNING)
