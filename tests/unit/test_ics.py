from datetime import UTC, datetime

import icalendar
import pytest

from townhall.meetings.ics import render_invite
from townhall.model.schedule import Schedule


def _invite(schedule: Schedule, title: str = "Weekly sync, team; all") -> str:
    return render_invite(
        uid="abc123@townhall",
        title=title,
        description="Join: https://example.test/join.html?m=abc123\nPasscode: 4321",
        url="https://example.test/join.html?m=abc123",
        schedule=schedule,
        created=datetime(2026, 11, 1, tzinfo=UTC),
        now=datetime(2026, 11, 2, tzinfo=UTC),
    )


def test_invite_parses_as_a_calendar_with_the_right_times() -> None:
    s = Schedule.parse("2026-12-01T09:00", "Europe/Paris", 45, "FREQ=WEEKLY;BYDAY=TU;COUNT=10")
    text = _invite(s)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    cal = icalendar.Calendar.from_ical(text)
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1
    event = events[0]
    assert str(event["SUMMARY"]) == "Weekly sync, team; all"
    start = event.decoded("DTSTART")
    assert start.astimezone(UTC) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert event.decoded("DURATION").total_seconds() == 45 * 60
    rrule = event["RRULE"]
    assert isinstance(rrule, icalendar.vRecur)
    assert rrule["FREQ"] == ["WEEKLY"]
    assert "Passcode: 4321" in str(event["DESCRIPTION"])
    tz = [c for c in cal.walk("VTIMEZONE")]
    assert tz and str(tz[0]["TZID"]) == "Europe/Paris"


def test_long_unicode_lines_are_folded_at_75_octets() -> None:
    s = Schedule.parse("2026-12-01T09:00", "UTC", 30, None)
    text = _invite(s, title="Réunion été " * 20)
    for line in text.split("\r\n"):
        assert len(line.encode()) <= 75
    cal = icalendar.Calendar.from_ical(text)
    assert str(next(iter(cal.walk("VEVENT")))["SUMMARY"]) == "Réunion été " * 20


def test_zone_without_dst_gets_a_single_standard_block() -> None:
    s = Schedule.parse("2026-12-01T09:00", "Asia/Tokyo", 30, None)
    text = _invite(s)
    assert text.count("BEGIN:STANDARD") == 1 and "BEGIN:DAYLIGHT" not in text
    assert "TZOFFSETTO:+0900" in text


def test_a_title_stored_with_control_characters_still_gives_a_valid_file() -> None:
    # Titles with these are refused since issue 9; one stored before must not break the file.
    s = Schedule.parse("2026-12-01T09:00", "UTC", 30, None)
    text = _invite(s, title="Old\x7f\x1b[31m\x85title\x00\ttab")
    assert not any((ord(c) < 32 and c not in "\t\r\n") or 0x7F <= ord(c) <= 0x9F for c in text)
    cal = icalendar.Calendar.from_ical(text)
    assert str(next(iter(cal.walk("VEVENT")))["SUMMARY"]) == "Old[31mtitle\ttab"


@pytest.mark.parametrize(
    ("start", "zone", "rule"),
    [
        ("1970-01-01T00:00", "Etc/GMT+12", "FREQ=DAILY"),
        ("2199-12-31T23:59", "Pacific/Kiritimati", "FREQ=YEARLY;UNTIL=22991231T235959Z"),
        ("2199-12-31T23:59", "America/New_York", None),
    ],
)
def test_invites_at_the_edges_of_the_accepted_years(
    start: str, zone: str, rule: str | None
) -> None:
    s = Schedule.parse(start, zone, 24 * 60, rule)
    cal = icalendar.Calendar.from_ical(_invite(s))
    event = next(iter(cal.walk("VEVENT")))
    assert event.decoded("DTSTART").astimezone(UTC) == s.start_utc
