"""MON001: a monitoring signal whose metric_thresholds name a metric Azure ML does not compute for it (or are
written in neither of Azure's forms). MAIL001 (a warning): emails to notify (a monitor's alert_notification,
a job's notification_setting) while mlops.yaml names no smtp server to send them through."""

from __future__ import annotations

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Severity
from mlops_gitops.runtime.monitoring.metrics import SignalError, thresholds
from mlops_gitops.validate.context import RuleContext

LOCAL_TYPES = ("data_drift", "prediction_drift", "data_quality")


def check(ctx: RuleContext) -> None:
    no_smtp = ctx.tree.config.smtp is None
    for res in ctx.tree.resources:
        spec = res.doc.data if isinstance(res.doc.data, dict) else {}
        if res.kind is Kind.SCHEDULE and isinstance(spec.get("create_monitor"), dict):
            monitor = spec["create_monitor"]
            for name, signal in (monitor.get("monitoring_signals") or {}).items():
                if not isinstance(signal, dict) or signal.get("type") not in LOCAL_TYPES:
                    continue
                try:
                    thresholds(str(signal["type"]), signal.get("metric_thresholds"))
                except SignalError as exc:
                    ctx.report(res, ("create_monitor", "monitoring_signals", name, "metric_thresholds"), "MON001",
                               str(exc))
            if no_smtp and (monitor.get("alert_notification") or {}).get("emails"):
                ctx.report(res, ("create_monitor", "alert_notification", "emails"), "MAIL001",
                           "alert emails will not be sent: mlops.yaml has no smtp server (smtp: host, sender)",
                           Severity.WARNING)
        elif res.kind is Kind.JOB and no_smtp and (spec.get("notification_setting") or {}).get("emails"):
            ctx.report(res, ("notification_setting", "emails"), "MAIL001",
                       "job emails will not be sent: mlops.yaml has no smtp server (smtp: host, sender)",
                       Severity.WARNING)
