"""Schedule expressions against examples from AWS's EventBridge documentation, with the next
fire times worked out by hand from a calendar (January 2025 starts on a Wednesday)."""

from datetime import datetime, timezone

import pytest

from runner.errors import InvalidParameter
from runner.schedules.expressions import parse

UTC = timezone.utc
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def t(*parts):
    return datetime(*parts, tzinfo=UTC)


CASES = [
    # (expression, after, expected next fire (UTC) or None)
    ("cron(0 10 * * ? *)", BASE, t(2025, 1, 1, 10, 0)),
    ("cron(15 12 * * ? *)", BASE, t(2025, 1, 1, 12, 15)),
    ("cron(0 18 ? * MON-FRI *)", BASE, t(2025, 1, 1, 18, 0)),
    ("cron(0 8 1 * ? *)", BASE, t(2025, 1, 1, 8, 0)),
    ("cron(0/15 * * * ? *)", BASE, t(2025, 1, 1, 0, 15)),
    ("cron(0/10 * ? * MON-FRI *)", BASE, t(2025, 1, 1, 0, 10)),
    ("cron(0/5 8-17 ? * MON-FRI *)", BASE, t(2025, 1, 1, 8, 0)),
    ("cron(0/5 8-17 ? * MON-FRI *)", t(2025, 1, 3, 17, 55), t(2025, 1, 6, 8, 0)),
    ("cron(0 9 ? * 2#1 *)", BASE, t(2025, 1, 6, 9, 0)),
    ("cron(0 0 L * ? *)", BASE, t(2025, 1, 31)),
    ("cron(0 0 L * ? *)", t(2025, 1, 31), t(2025, 2, 28)),
    ("cron(0 0 LW * ? *)", BASE, t(2025, 1, 31)),
    ("cron(0 0 LW * ? *)", t(2025, 5, 1), t(2025, 5, 30)),  # May 31 2025 is a Saturday
    ("cron(0 0 ? * 6L *)", BASE, t(2025, 1, 31)),
    ("cron(0 0 15W * ? *)", BASE, t(2025, 1, 15)),
    ("cron(0 0 1W * ? *)", BASE, t(2025, 2, 3)),  # Feb 1 is a Saturday; W never leaves the month
    ("cron(0 0 L 2 ? *)", BASE, t(2025, 2, 28)),
    ("cron(0 0 29 2 ? *)", BASE, t(2028, 2, 29)),
    ("cron(30 2 ? * L *)", BASE, t(2025, 1, 4, 2, 30)),  # L alone: Saturday
    ("cron(0 12 ? * SUN *)", BASE, t(2025, 1, 5, 12, 0)),
    ("cron(0 12 ? * 1 *)", BASE, t(2025, 1, 5, 12, 0)),
    ("cron(0 0 ? * 7 2026)", BASE, t(2026, 1, 3)),
    ("cron(0 0 1 1 ? 2026-2027)", BASE, t(2026, 1, 1)),
    ("cron(0 0 1 JAN,JUL ? *)", BASE, t(2025, 7, 1)),
    ("cron(0 0 1 */3 ? *)", BASE, t(2025, 4, 1)),
    ("cron(45 23 31 12 ? *)", BASE, t(2025, 12, 31, 23, 45)),
    ("cron(0 0 ? * 3#5 *)", BASE, t(2025, 4, 29)),  # the first month with a fifth Tuesday
    ("cron(0 0 31 * ? *)", t(2025, 1, 31), t(2025, 3, 31)),
    ("cron(5,10,50 * * * ? *)", BASE, t(2025, 1, 1, 0, 5)),
    ("cron(5,10,50 * * * ? *)", t(2025, 1, 1, 0, 50), t(2025, 1, 1, 1, 5)),
    ("cron(0 1-3 * * ? *)", BASE, t(2025, 1, 1, 1, 0)),
    ("cron(0 1-3 * * ? *)", t(2025, 1, 1, 3, 0), t(2025, 1, 2, 1, 0)),
    ("cron(* * * * ? *)", BASE, t(2025, 1, 1, 0, 1)),
    ("cron(0 0 ? * MON#2 *)", BASE, t(2025, 1, 13)),
    ("cron(0 0 ? * 2L *)", BASE, t(2025, 1, 27)),
    ("cron(0 12 10-15 * ? *)", BASE, t(2025, 1, 10, 12, 0)),
    ("cron(0 0 * * ? 2024)", BASE, None),
    ("cron(0 0 30 2 ? *)", BASE, None),
    ("cron(0 */6 * * ? *)", BASE, t(2025, 1, 1, 6, 0)),
    ("cron(15 10 ? * 6L 2025-2026)", BASE, t(2025, 1, 31, 10, 15)),
    ("cron(0 8 ? * MON-FRI *)", t(2025, 1, 3, 9, 0), t(2025, 1, 6, 8, 0)),
    ("cron(0 0 1-7 * ? *)", BASE, t(2025, 1, 2)),
    ("cron(0 0 ? * SAT,SUN *)", BASE, t(2025, 1, 4)),
    ("cron(0 0 ? * 1-7/2 *)", BASE, t(2025, 1, 2)),  # SUN, TUE, THU, SAT
    ("cron(0 0 ? * 1/2 *)", BASE, t(2025, 1, 2)),
    ("cron(0 0 ? jan-mar mon *)", BASE, t(2025, 1, 6)),
    ("cron(0 0 1 * ? *)", t(2025, 12, 31, 23, 59), t(2026, 1, 1)),
    ("rate(5 minutes)", BASE, t(2025, 1, 1, 0, 5)),
    ("rate(1 minute)", BASE, t(2025, 1, 1, 0, 1)),
    ("rate(1 hour)", BASE, t(2025, 1, 1, 1, 0)),
    ("rate(12 hours)", BASE, t(2025, 1, 1, 12, 0)),
    ("rate(2 days)", BASE, t(2025, 1, 3)),
    ("rate(1 day)", BASE, t(2025, 1, 2)),
    ("at(2025-03-01T10:00:00)", BASE, t(2025, 3, 1, 10, 0)),
    ("at(2024-01-01T00:00:00)", BASE, None),
]


@pytest.mark.parametrize("expr,after,expected", CASES)
def test_next_fire_utc(expr, after, expected):
    assert parse(expr).next_after(after, start=BASE) == expected


def test_rate_counts_from_its_start():
    start = t(2024, 12, 31, 23, 59, 30)
    assert parse("rate(1 minute)").next_after(BASE, start) == t(2025, 1, 1, 0, 0, 30)
    assert parse("rate(10 minutes)").next_after(t(2020, 1, 1), start) == start


ZONED = [
    # Europe/Paris is UTC+1 in winter, UTC+2 in summer.
    ("cron(0 9 * * ? *)", "Europe/Paris", BASE, t(2025, 1, 1, 8, 0)),
    ("cron(0 9 * * ? *)", "Europe/Paris", t(2025, 7, 1), t(2025, 7, 1, 7, 0)),
    ("cron(0 0 * * ? *)", "Asia/Kolkata", BASE, t(2025, 1, 1, 18, 30)),
    ("cron(0 0 1 * ? *)", "Australia/Sydney", BASE, t(2025, 1, 31, 13, 0)),
    ("at(2025-06-01T12:00:00)", "America/New_York", BASE, t(2025, 6, 1, 16, 0)),
    # New York, spring forward on 2025-03-09 at 02:00 -> 03:00: 02:30 does not exist that day.
    ("cron(30 2 * * ? *)", "America/New_York", t(2025, 3, 9), t(2025, 3, 10, 6, 30)),
    ("cron(30 3 * * ? *)", "America/New_York", t(2025, 3, 9), t(2025, 3, 9, 7, 30)),
    ("cron(0 * * * ? *)", "America/New_York", t(2025, 3, 9, 6, 0), t(2025, 3, 9, 7, 0)),
    # Fall back on 2025-11-02 at 02:00 -> 01:00: 01:30 happens twice and fires once (the first).
    ("cron(30 1 * * ? *)", "America/New_York", t(2025, 11, 2, 4), t(2025, 11, 2, 5, 30)),
    ("cron(30 1 * * ? *)", "America/New_York", t(2025, 11, 2, 5, 30), t(2025, 11, 3, 6, 30)),
    # Europe/London, spring forward on 2025-03-30 at 01:00 -> 02:00.
    ("cron(30 1 ? * SUN *)", "Europe/London", t(2025, 3, 29), t(2025, 4, 6, 0, 30)),
]


@pytest.mark.parametrize("expr,tz,after,expected", ZONED)
def test_next_fire_in_a_time_zone(expr, tz, after, expected):
    assert parse(expr, tz).next_after(after) == expected


def test_rate_is_real_time_across_dst():
    # 24 hours after 12:00 EST on the day before the change is 13:00 EDT.
    start = t(2025, 3, 8, 17, 0)
    assert parse("rate(1 day)", "America/New_York").next_after(start, start) == t(2025, 3, 9, 17)


def test_sequence_over_a_fall_back_night_has_no_repeat():
    e = parse("cron(0/30 * * * ? *)", "America/New_York")
    fires, at = [], t(2025, 11, 2, 4, 0)  # 00:00 EDT
    for _ in range(8):
        at = e.next_after(at)
        fires.append(at)
    # Every half hour of real time; the repeated 01:00-01:59 EST hour is not fired again.
    assert fires[:4] == [t(2025, 11, 2, 4, 30), t(2025, 11, 2, 5, 0), t(2025, 11, 2, 5, 30),
                         t(2025, 11, 2, 7, 0)]
    assert len(set(fires)) == 8 and fires == sorted(fires)


@pytest.mark.parametrize("expr", [
    "cron(0 0 * * * *)", "cron(0 0 ? * ? *)", "cron(60 0 * * ? *)", "cron(0 24 * * ? *)",
    "cron(0 0 * * ?)", "cron(0 0 32 * ? *)", "cron(0 0 ? * 8 *)", "cron(0 0 ? * 2#6 *)",
    "cron(0 0 ? * MON-FRI 1969)", "cron(0 0 1 13 ? *)", "cron(5-1 * * * ? *)", "cron(0/x * * * ? *)",
    "rate(0 minutes)", "rate(1 minutes)", "rate(5 minute)", "rate(5 weeks)", "rate(-1 days)",
    "at(2025-02-30T00:00:00)", "at(2025-01-01 00:00:00)", "every 5 minutes", "",
])
def test_bad_expressions_are_refused_naming_the_field(expr):
    with pytest.raises(InvalidParameter, match="expression"):
        parse(expr)


def test_unknown_time_zone_is_refused():
    with pytest.raises(InvalidParameter, match="timezone"):
        parse("rate(1 day)", "Mars/Olympus")
