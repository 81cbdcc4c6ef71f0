"""When a schedule fires: Azure ML's `cron` and `recurrence` triggers as occurrence times.

Azure writes time zones as Windows names (`Pacific Standard Time`); they are mapped to IANA zones with
the CLDR table tzlocal ships. `cron` is evaluated by cronsim (five fields, in the trigger's zone);
`recurrence` steps `interval` units of `frequency` from `start_time`, at the pattern's hours and minutes
(and week days) for day, week and month frequencies. Pure: no clock is read here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SEARCH_LIMIT = 600_000  # occurrences examined at most (a year of minutes): past that, older ones are not counted


class TriggerError(ValueError):
    pass


def zone(name: str | None) -> ZoneInfo:
    """An IANA zone for Azure's time_zone (a Windows name, or an IANA one); UTC when none is given."""
    if not name:
        return ZoneInfo("UTC")
    from tzlocal.windows_tz import win_tz

    for candidate in (win_tz.get(name), name):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    raise TriggerError(f"unknown time zone {name!r} (a Windows name such as 'Pacific Standard Time', or an IANA "
                       "name such as 'Europe/Berlin')")


def _time(text: str | None, tz: ZoneInfo, what: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise TriggerError(f"{what} {text!r} is not an ISO 8601 time (2026-12-07T03:00:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Trigger:
    kind: str  # cron | recurrence
    tz: ZoneInfo
    expression: str = ""
    frequency: str = ""
    interval: int = 1
    hours: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    week_days: tuple[int, ...] = ()
    month_days: tuple[int, ...] = ()
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Trigger:
        tz = zone(spec.get("time_zone") or spec.get("timezone"))
        start = _time(spec.get("start_time"), tz, "start_time")
        end = _time(spec.get("end_time"), tz, "end_time")
        if start and end and end <= start:
            raise TriggerError(f"end_time {spec.get('end_time')} is not after start_time {spec.get('start_time')}")
        if spec.get("type") == "cron":
            expression = str(spec.get("expression") or "")
            trigger = cls("cron", tz, expression=expression, start=start, end=end)
            trigger._check_cron()
            return trigger
        pattern = spec.get("schedule") or spec.get("pattern") or {}
        try:
            days = tuple(WEEKDAYS.index(str(d).lower()) for d in _listed(pattern.get("week_days")))
        except ValueError:
            raise TriggerError(f"week_days must be of {', '.join(WEEKDAYS)}") from None
        hours = tuple(int(h) for h in _listed(pattern.get("hours")))
        minutes = tuple(int(m) for m in _listed(pattern.get("minutes")))
        month_days = tuple(int(d) for d in _listed(pattern.get("month_days")))
        if (any(not 0 <= h < 24 for h in hours) or any(not 0 <= m < 60 for m in minutes)
                or any(not 1 <= d <= 31 for d in month_days)):
            raise TriggerError("a recurrence pattern's hours are 0-23, minutes 0-59, month_days 1-31")
        frequency = str(spec.get("frequency") or "").lower()
        if frequency not in ("minute", "hour", "day", "week", "month"):
            raise TriggerError(f"frequency {spec.get('frequency')!r} is not minute, hour, day, week or month")
        return cls("recurrence", tz, frequency=frequency, interval=int(spec.get("interval") or 1), hours=hours,
                   minutes=minutes, week_days=days, month_days=month_days, start=start, end=end)

    def _check_cron(self) -> None:
        from cronsim import CronSim, CronSimError

        try:
            it = CronSim(self.expression, datetime(2000, 1, 1, tzinfo=self.tz))
            next(it)
        except CronSimError as exc:
            raise TriggerError(f"cron expression {self.expression!r}: {exc}") from None
        except StopIteration:
            raise TriggerError(f"cron expression {self.expression!r} never fires") from None

    # -- occurrences ------------------------------------------------------------------------------

    def after(self, moment: datetime) -> Iterator[datetime]:
        """Occurrences strictly after `moment`, in order, within start_time and end_time."""
        moment = max(moment, self.start - timedelta(microseconds=1)) if self.start else moment
        source = self._cron(moment) if self.kind == "cron" else self._recurrence(moment)
        for when in source:
            if self.end is not None and when > self.end:
                return
            yield when

    def _cron(self, moment: datetime) -> Iterator[datetime]:
        from cronsim import CronSim

        local = moment.astimezone(self.tz).replace(second=0, microsecond=0)
        for when in CronSim(self.expression, local):
            if when > moment:
                yield when.astimezone(UTC)

    def _recurrence(self, moment: datetime) -> Iterator[datetime]:
        anchor = (self.start or datetime(2000, 1, 1, tzinfo=self.tz)).astimezone(self.tz)
        if self.frequency in ("minute", "hour"):
            step = timedelta(minutes=self.interval) if self.frequency == "minute" else timedelta(hours=self.interval)
            k = max(0, int((moment - anchor) / step))
            while True:
                when = anchor + k * step
                if when > moment:
                    yield when.astimezone(UTC)
                k += 1
        day = max(anchor, moment.astimezone(self.tz) - timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                                microsecond=0)
        hours, minutes = self.hours or (anchor.hour,), self.minutes or (anchor.minute,)
        while True:
            if self._day_matches(day, anchor):
                for h in sorted(hours):
                    for m in sorted(minutes):
                        when = day.replace(hour=h, minute=m)
                        if when > moment and when >= anchor:
                            yield when.astimezone(UTC)
            day += timedelta(days=1)

    def _day_matches(self, day: datetime, anchor: datetime) -> bool:
        start_day = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.frequency == "day":
            return (day - start_day).days % self.interval == 0
        if self.frequency == "week":
            weeks = ((day - start_day).days - day.weekday() + start_day.weekday()) // 7
            days = self.week_days or (anchor.weekday(),)
            return weeks % self.interval == 0 and day.weekday() in days
        months = (day.year - anchor.year) * 12 + day.month - anchor.month
        return months % self.interval == 0 and day.day in (self.month_days or (anchor.day,))

    def due(self, last: datetime | None, now: datetime) -> tuple[datetime | None, int]:
        """The latest occurrence after `last` and not after `now`, and how many earlier ones it stands for
        (missed while nothing ran: they fire once, as the latest)."""
        found: datetime | None = None
        count = 0
        for when in self.after(last or now):
            if when > now or count >= SEARCH_LIMIT:
                break
            found, count = when, count + 1
        return found, max(0, count - 1)
