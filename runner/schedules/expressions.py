"""EventBridge Scheduler's schedule expressions: cron(...), rate(...) and at(...).

    cron(minutes hours day-of-month month day-of-week year)
        minutes 0-59, hours 0-23            , - * /
        day-of-month 1-31                   , - * ? / L W  (L: last day; 15W: weekday nearest
                                            the 15th, never crossing the month; LW: last weekday)
        month 1-12 or JAN-DEC               , - * /
        day-of-week 1-7 or SUN-SAT (1=SUN)  , - * ? L #    (5L: last Thursday; 3#2: 2nd Tuesday)
        year 1970-2199                      , - * /
        One of day-of-month and day-of-week must be '?' (AWS refuses both set).
    rate(N minute|minutes|hour|hours|day|days)
        every N units from the schedule's start; a day is 24 hours of real time.
    at(yyyy-mm-ddThh:mm:ss)
        once, at that wall-clock time.

Cron and at are read in the schedule's time zone (an IANA name; UTC by default). Daylight
saving time follows EventBridge Scheduler: a wall-clock time skipped when clocks go forward
does not fire that day; a time that occurs twice when they go back fires once (its first
occurrence). Every method takes and returns aware UTC datetimes.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.errors import InvalidParameter

UTC = timezone.utc
MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
YEAR_MAX = 2199
_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_AT_RE = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON_RE = re.compile(r"^cron\((.*)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def bad(expr: str, why: str) -> InvalidParameter:
    return InvalidParameter(
        "expression", f"{expr!r} {why}; use cron(min hour day-of-month month day-of-week year), "
        "rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParameter("timezone", f"{name!r} is not an IANA time zone name; "
                               "use e.g. UTC or Europe/Paris") from None


def parse(expr: str, tz: str = "UTC") -> "Expression":
    """The expression, or InvalidParameter saying what is wrong with it."""
    text = (expr or "").strip()
    z = zone(tz)
    if m := _RATE_RE.match(text):
        n = int(m.group(1))
        unit = m.group(2).rstrip("s")
        if n < 1:
            raise bad(expr, "has a rate below 1")
        if (n == 1) != (m.group(2) == unit):
            raise bad(expr, f"needs the {'singular' if n == 1 else 'plural'} unit")
        return Rate(text, z, n * _UNIT_S[unit])
    if m := _AT_RE.match(text):
        try:
            when = datetime.fromisoformat(m.group(1))
        except ValueError:
            raise bad(expr, "is not a real date and time") from None
        return At(text, z, when)
    if m := _CRON_RE.match(text):
        return Cron(text, z, m.group(1))
    raise bad(expr, "is not a schedule expression")


class Expression:
    text: str
    tz: ZoneInfo

    def next_after(self, after: datetime, start: datetime | None = None) -> datetime | None:
        """The first fire time strictly after `after` (UTC), or None if there is none.
        `start` anchors rate() expressions (the schedule's start date or creation time)."""
        raise NotImplementedError


@dataclass
class Rate(Expression):
    text: str
    tz: ZoneInfo
    period_s: int

    def next_after(self, after, start=None):
        anchor = start or after
        if after < anchor:
            return anchor
        k = int((after - anchor).total_seconds() // self.period_s) + 1
        return anchor + timedelta(seconds=k * self.period_s)


@dataclass
class At(Expression):
    text: str
    tz: ZoneInfo
    when: datetime  # naive wall-clock time in tz

    def next_after(self, after, start=None):
        instant = _local_to_utc(self.when, self.tz)
        if instant is None:  # a skipped wall-clock time: the next valid instant after the gap
            instant = self.when.replace(tzinfo=self.tz).astimezone(UTC)
        return instant if instant > after else None


class Cron(Expression):
    def __init__(self, text: str, tz: ZoneInfo, body: str) -> None:
        self.text, self.tz = text, tz
        fields = body.split()
        if len(fields) != 6:
            raise bad(text, f"has {len(fields)} fields; cron() takes 6")
        mi, hr, dom, mon, dow, yr = fields
        self.minutes = _set(text, mi, 0, 59)
        self.hours = _set(text, hr, 0, 23)
        self.months = _set(text, mon, 1, 12, MONTHS)
        self.years = _set(text, yr, 1970, YEAR_MAX)
        if (dom == "?") == (dow == "?"):
            raise bad(text, "must have '?' in exactly one of day-of-month and day-of-week")
        self.day = _dom(text, dom) if dow == "?" else _dow(text, dow)

    def next_after(self, after, start=None):
        local = after.astimezone(self.tz)
        day = local.date()
        while day.year <= YEAR_MAX:
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                continue
            if self.day(day):
                for h in self.hours:
                    for m in self.minutes:
                        instant = _local_to_utc(datetime(day.year, day.month, day.day, h, m),
                                                self.tz)
                        if instant is not None and instant > after:
                            return instant
            day += timedelta(days=1)
        return None


def _local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant of a wall-clock time: its first occurrence when it occurs twice (fold=0),
    None when clocks skip it (it does not round-trip)."""
    aware = wall.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return instant


def _num(expr: str, token: str, lo: int, hi: int, names: dict[str, int] | None = None) -> int:
    t = token.upper()
    if names and t in names:
        return names[t]
    if not t.isdigit() or not lo <= int(t) <= hi:
        raise bad(expr, f"has {token!r} where {lo}-{hi} was expected")
    return int(t)


def _set(expr: str, field: str, lo: int, hi: int,
         names: dict[str, int] | None = None) -> list[int]:
    """The sorted values of a field made of , - * / parts."""
    out: set[int] = set()
    for part in field.split(","):
        base, _, step_s = part.partition("/")
        step = _num(expr, step_s, 1, hi - lo + 1 if hi > lo else 1) if step_s else 1
        if step_s and not step_s.isdigit():
            raise bad(expr, f"has a bad step in {part!r}")
        if base == "*":
            a, b = lo, hi
        elif "-" in base:
            a_s, _, b_s = base.partition("-")
            a, b = _num(expr, a_s, lo, hi, names), _num(expr, b_s, lo, hi, names)
            if a > b:
                raise bad(expr, f"has a range {base!r} that runs backwards")
        else:
            a = _num(expr, base, lo, hi, names)
            b = hi if step_s else a
        out.update(range(a, b + 1, step))
    return sorted(out)


def _dom(expr: str, field: str):
    """A day matcher for a day-of-month field."""
    f = field.upper()
    if f == "L":
        return lambda d: d.day == _last(d)
    if f == "LW":
        return lambda d: d == _last_weekday(d)
    if f.endswith("W"):
        n = _num(expr, f[:-1], 1, 31)
        return lambda d: d == _nearest_weekday(d, n)
    days = set(_set(expr, f, 1, 31))
    return lambda d: d.day in days


def _dow(expr: str, field: str):
    """A day matcher for a day-of-week field (1 = Sunday)."""
    f = field.upper()
    if f == "L":
        return lambda d: _weekday(d) == 7
    if f.endswith("L"):
        n = _num(expr, f[:-1], 1, 7, DAYS)
        return lambda d: _weekday(d) == n and d.day + 7 > _last(d)
    if "#" in f:
        n_s, _, k_s = f.partition("#")
        n, k = _num(expr, n_s, 1, 7, DAYS), _num(expr, k_s, 1, 5)
        return lambda d: _weekday(d) == n and (d.day - 1) // 7 + 1 == k
    days = set(_set(expr, f, 1, 7, DAYS))
    return lambda d: _weekday(d) in days


def _weekday(d: date) -> int:
    return (d.weekday() + 1) % 7 + 1  # Monday=0 -> 2 ... Sunday=6 -> 1


def _last(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _last_weekday(d: date) -> date:
    last = d.replace(day=_last(d))
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return last


def _nearest_weekday(d: date, n: int) -> date | None:
    """The weekday nearest day n of d's month, within the month (Quartz's W rule)."""
    if n > _last(d):
        return None
    target = d.replace(day=n)
    if target.weekday() == 5:  # Saturday -> Friday, or Monday if Friday is last month's
        target = target - timedelta(days=1) if n > 1 else target + timedelta(days=2)
    elif target.weekday() == 6:  # Sunday -> Monday, or Friday if Monday is next month's
        target = target + timedelta(days=1) if n < _last(d) else target - timedelta(days=2)
    return target
