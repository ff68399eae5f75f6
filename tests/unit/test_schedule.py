import itertools
import time
from datetime import UTC, datetime

import pytest

from townhall.errors import InvalidInput
from townhall.model.schedule import Schedule, normalize_rrule


def test_one_off_meeting_has_one_occurrence_until_it_ends() -> None:
    s = Schedule.parse("2026-12-01T09:00", "Europe/Paris", 30, None)
    assert s.start_utc == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    before = s.occurrences_after(datetime(2026, 11, 30, tzinfo=UTC))
    assert [o.start_utc for o in before] == [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    during = s.occurrences_after(datetime(2026, 12, 1, 8, 20, tzinfo=UTC))
    assert len(during) == 1
    assert s.occurrences_after(datetime(2026, 12, 1, 8, 31, tzinfo=UTC)) == []


def test_weekly_rule_keeps_wall_clock_time_across_dst() -> None:
    s = Schedule.parse("2027-03-16T09:00", "Europe/Paris", 45, "FREQ=WEEKLY;BYDAY=TU;COUNT=4")
    occ = s.occurrences_after(datetime(2027, 3, 1, tzinfo=UTC), 10)
    assert [o.start.hour for o in occ] == [9, 9, 9, 9]
    # Paris leaves UTC+1 for UTC+2 on 28 March 2027.
    assert [o.start_utc.hour for o in occ] == [8, 8, 7, 7]
    assert len(occ) == 4


def test_occurrences_skip_the_past_and_respect_the_limit() -> None:
    s = Schedule.parse("2026-01-05T10:00", "America/New_York", 60, "FREQ=DAILY")
    occ = s.occurrences_after(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), 3)
    assert len(occ) == 3
    assert occ[0].start.date().isoformat() == "2026-06-01"  # 10:00 EDT = 14:00 UTC, not over
    assert all(b.start > a.start for a, b in itertools.pairwise(occ))


def test_aware_start_is_converted_to_the_meeting_zone() -> None:
    s = Schedule.parse("2026-12-01T08:00:00+00:00", "Asia/Tokyo", 30, None)
    assert s.start_local.isoformat() == "2026-12-01T17:00:00"


@pytest.mark.parametrize(
    ("start", "zone", "minutes", "rule"),
    [
        ("tomorrow", "UTC", 30, None),
        ("2026-12-01T09:00", "Mars/Olympus", 30, None),
        ("2026-12-01T09:00", "../etc/passwd", 30, None),
        ("2026-12-01T09:00", "UTC", 0, None),
        ("2026-12-01T09:00", "UTC", 24 * 60 + 1, None),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=HOURLY"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;BYSETPOS=1"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;COUNT=2;UNTIL=20270101T000000Z"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;BYDAY=XX"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY\nRRULE:FREQ=DAILY"),
        # Issue 9: values out of range were stored, then hung (INTERVAL=0) or broke every read.
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=0"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=-1"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=1000"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=99999999999999999999"),
        (
            "2026-12-01T09:00",
            "UTC",
            30,
            "FREQ=DAILY;INTERVAL=\u0661",
        ),  # int() takes Arabic-Indic digits
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=1_0"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=2;INTERVAL=3"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;COUNT=0"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;COUNT=-5"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;COUNT=1000"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;COUNT="),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;"),
        ("2026-12-01T09:00", "UTC", 30, "INTERVAL=2"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;UNTIL=20261130T000000Z"),  # before start
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;UNTIL=20270101"),  # RFC: UTC with a TZID
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;UNTIL=20270230T000000Z"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;UNTIL=99991231T235959Z"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;BYDAY=MO,"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;BYDAY=1MO"),  # numbers: MONTHLY, YEARLY
        ("2026-12-01T09:00", "UTC", 30, "FREQ=MONTHLY;BYDAY=6MO"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=MONTHLY;BYDAY=0MO"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=YEARLY;BYDAY=54MO"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=YEARLY;BYMONTH=1;BYDAY=-6MO"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=MONTHLY;BYDAY=MO,1FR"),  # dateutil: nothing
        ("2026-12-01T09:00", "UTC", 30, "FREQ=MONTHLY;BYMONTHDAY=0"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=MONTHLY;BYMONTHDAY=32"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=MONTHLY;BYMONTHDAY=-32"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;BYMONTHDAY=1"),  # RFC: not with WEEKLY
        ("2026-12-01T09:00", "UTC", 30, "FREQ=YEARLY;BYMONTH=0"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=YEARLY;BYMONTH=13"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=YEARLY;BYMONTH=-1"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=WEEKLY;WKST=XX"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DA\u0131LY"),  # upper() would make it DAILY
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY\u0000"),
        # Rules that match nothing: refused, not walked to year 9999 on every read.
        ("2026-12-01T09:00", "UTC", 30, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
        ("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31"),
        ("2026-11-30T09:00", "UTC", 30, "FREQ=DAILY;INTERVAL=7;BYDAY=TU"),  # Mondays only
        ("2025-02-01T09:00", "UTC", 30, "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29"),
        # Starts whose instants do not exist in every zone (OverflowError: 500), or absurd.
        ("0001-01-01T00:30", "Asia/Tokyo", 30, None),
        ("9999-12-31T23:30", "America/New_York", 30, None),
        ("0001-01-01T00:00+00:00", "America/New_York", 30, None),
        ("9999-12-31T23:59+00:00", "Pacific/Kiritimati", 30, None),
        ("1969-12-31T23:59", "UTC", 30, None),
        ("2200-01-01T00:00", "UTC", 30, None),
        ("2026-12-01T09:00" + " " * 100, "UTC", 30, None),
        ("2026-12-01T09:00\ud800", "UTC", 30, None),
        ("2026-12-01T09:00", "Europe/Paris\u0000", 30, None),
        ("2026-12-01T09:00", "Europe/Paris\ud800", 30, None),
        ("2026-12-01T09:00", "zone.tab", 30, None),
    ],
)
def test_bad_schedules_are_refused(start: str, zone: str, minutes: int, rule: str | None) -> None:
    with pytest.raises(InvalidInput):
        Schedule.parse(start, zone, minutes, rule)


def test_rrule_is_normalized() -> None:
    assert normalize_rrule("rrule:freq=weekly;byday=mo,we") == "FREQ=WEEKLY;BYDAY=MO,WE"
    assert normalize_rrule("  ") is None


def test_rrule_values_are_normalized() -> None:
    assert normalize_rrule("FREQ=MONTHLY;BYDAY=+1MO,-1FR,+1MO;INTERVAL=02") == (
        "FREQ=MONTHLY;BYDAY=1MO,-1FR;INTERVAL=2"
    )
    assert normalize_rrule(" RRULE:freq=yearly ; bymonth=03,3 ; bymonthday=+7 ") == (
        "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=7"
    )


def test_limits_are_accepted_where_they_are_the_limits() -> None:
    s = Schedule.parse("2199-12-31T23:59", "Pacific/Kiritimati", 24 * 60, "FREQ=DAILY;COUNT=999")
    occ = s.occurrences_after(datetime(2199, 12, 1, tzinfo=UTC), 100)
    assert len(occ) == 100 and occ[-1].start.year == 2200
    s = Schedule.parse("1970-01-01T00:00", "Etc/GMT+12", 30, "FREQ=YEARLY;INTERVAL=999")
    assert s.start_utc == datetime(1970, 1, 1, 12, tzinfo=UTC)
    until = Schedule.parse("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;UNTIL=22991231T235959Z")
    assert until.recurrence is not None and until.recurrence.until is not None
    # UNTIL equal to the start: one occurrence (RFC 5545: UNTIL is inclusive).
    once = Schedule.parse("2026-12-01T09:00", "UTC", 30, "FREQ=DAILY;UNTIL=20261201T090000Z")
    assert len(once.occurrences_after(datetime(2026, 1, 1, tzinfo=UTC), 10)) == 1


def test_monthly_on_the_31st_skips_short_months_and_counts_only_real_dates() -> None:
    s = Schedule.parse("2027-01-31T10:00", "UTC", 30, "FREQ=MONTHLY;COUNT=4")
    occ = s.occurrences_after(datetime(2027, 1, 1, tzinfo=UTC), 10)
    assert [o.start.date().isoformat() for o in occ] == [
        "2027-01-31",
        "2027-03-31",
        "2027-05-31",
        "2027-07-31",
    ]


def test_numbered_weekdays_last_friday_and_us_thanksgiving() -> None:
    last_friday = Schedule.parse("2027-01-01T16:00", "UTC", 30, "FREQ=MONTHLY;BYDAY=-1FR")
    got = last_friday.occurrences_after(datetime(2027, 1, 1, tzinfo=UTC), 3)
    assert [o.start.day for o in got] == [29, 26, 26]
    thanksgiving = Schedule.parse(
        "2027-01-01T12:00", "America/New_York", 60, "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH"
    )
    got = thanksgiving.occurrences_after(datetime(2027, 1, 1, tzinfo=UTC), 2)
    assert [o.start.date().isoformat() for o in got] == ["2027-11-25", "2028-11-23"]


def test_a_long_running_series_is_listed_from_now_without_walking_from_its_start() -> None:
    s = Schedule.parse("1970-01-01T09:00", "Europe/Paris", 30, "FREQ=DAILY")
    started = time.perf_counter()
    occ = s.occurrences_after(datetime(2199, 6, 1, tzinfo=UTC), 100)
    assert time.perf_counter() - started < 0.5
    assert occ[0].start.date().isoformat() == "2199-06-01" and len(occ) == 100
