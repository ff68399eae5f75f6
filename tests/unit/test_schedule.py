import itertools
from datetime import UTC, datetime

import pytest

from townhall.errors import InvalidInput
from townhall.meetings.schedule import Schedule, normalize_rrule


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
    ],
)
def test_bad_schedules_are_refused(start: str, zone: str, minutes: int, rule: str | None) -> None:
    with pytest.raises(InvalidInput):
        Schedule.parse(start, zone, minutes, rule)


def test_rrule_is_normalized() -> None:
    assert normalize_rrule("rrule:freq=weekly;byday=mo,we") == "FREQ=WEEKLY;BYDAY=MO,WE"
    assert normalize_rrule("  ") is None
