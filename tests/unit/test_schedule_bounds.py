"""Issue 9, items 1 and 2: the occurrence computation is bounded in count and time, matches
dateutil for every rule it accepts, and a bad schedule already stored degrades for its own
meeting instead of hanging or breaking a list."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from dateutil.rrule import rrule as DateutilRule
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from townhall.auth.claims import AccessClaims
from townhall.errors import Conflict, InvalidInput
from townhall.meetings.service import MeetingService
from townhall.model.meeting import Meeting
from townhall.model.schedule import (
    LAST_YEAR,
    Recurrence,
    Schedule,
    _dates,
    _month_steps,
    parse_rrule,
)
from townhall.store.meetings import MeetingStore
from townhall.store.sessions import SessionStore

T = TypeVar("T")
NOW = datetime(2027, 6, 1, tzinfo=UTC)


def _within(seconds: float, work: Callable[[], T]) -> T:
    """`work()`, failing (not hanging) if it takes longer: a daemon thread we stop waiting for."""
    box: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(work())
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if errors:
        raise errors[0]
    return box[0]


# What older versions stored (or a person could write): each must read back as "unusable",
# quickly, never raise. Built as store.meetings.Meeting.from_item builds them: no validation.
STORED_BAD: list[tuple[str, Schedule]] = [
    ("interval 0 (hung)", Schedule(datetime(2026, 12, 1, 9), "UTC", 30, "FREQ=DAILY;INTERVAL=0")),
    ("interval -1", Schedule(datetime(2026, 12, 1, 9), "UTC", 30, "FREQ=DAILY;INTERVAL=-1")),
    ("count 0", Schedule(datetime(2026, 12, 1, 9), "UTC", 30, "FREQ=DAILY;COUNT=0")),
    ("count -5", Schedule(datetime(2026, 12, 1, 9), "UTC", 30, "FREQ=WEEKLY;COUNT=-5")),
    ("year 1", Schedule(datetime(1, 1, 1, 0, 30), "Asia/Tokyo", 30, "FREQ=DAILY")),
    ("year 9999", Schedule(datetime(9999, 12, 31, 23, 30), "America/New_York", 30, None)),
    ("no such zone", Schedule(datetime(2026, 12, 1, 9), "Mars/Olympus", 30, None)),
    ("zero minutes", Schedule(datetime(2026, 12, 1, 9), "UTC", 0, None)),
    ("not a rule", Schedule(datetime(2026, 12, 1, 9), "UTC", 30, "HELLO")),
    ("hourly", Schedule(datetime(2026, 12, 1, 9), "UTC", 30, "FREQ=HOURLY")),
    ("aware start", Schedule(datetime(2026, 12, 1, 9, tzinfo=UTC), "UTC", 30, None)),
    ("number as zone", Schedule(datetime(2026, 12, 1, 9), 7, 30, None)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("why", "schedule"), STORED_BAD, ids=[w for w, _ in STORED_BAD])
def test_a_bad_stored_schedule_is_reported_not_computed(why: str, schedule: Schedule) -> None:
    assert _within(2, lambda: schedule.occurrences_after(NOW, 100)) == []
    assert _within(2, lambda: schedule.problem), why


def test_a_rule_matching_nothing_ends_at_the_horizon_not_at_year_9999() -> None:
    # Built directly, past validation (which refuses it): the walk still has a ceiling.
    never = Recurrence(text="", freq="DAILY", interval=7, weekdays=frozenset({1}))
    monday = date(1970, 1, 5)
    started = time.perf_counter()
    assert list(_dates(never, monday, None)) == []
    assert time.perf_counter() - started < 0.5
    leap_never = Recurrence(
        text="", freq="DAILY", months=frozenset({2}), month_days=frozenset({30, 31})
    )
    assert list(_dates(leap_never, monday, None)) == []
    assert _month_steps() == (LAST_YEAR - 1970 + 1) * 12


def test_dateutil_took_seconds_for_the_same_rule() -> None:
    # Why the expansion is ours: the same empty rule walks day by day to year 9999 in dateutil
    # (here only from 2250, to keep this test short; from the 1970s it takes seconds).
    rule = rrulestr("FREQ=DAILY;INTERVAL=7;BYDAY=TU", dtstart=datetime(2250, 1, 6, 9))
    assert isinstance(rule, DateutilRule)
    started = time.perf_counter()
    assert rule.after(datetime(2250, 1, 6)) is None
    dateutil_seconds = time.perf_counter() - started
    never = Recurrence(text="", freq="DAILY", interval=7, weekdays=frozenset({1}))
    started = time.perf_counter()
    assert list(_dates(never, date(2250, 1, 6), None)) == []
    assert time.perf_counter() - started < max(dateutil_seconds, 0.05)


def test_counted_walk_from_the_earliest_start_is_short() -> None:
    s = Schedule.parse("1970-01-01T09:00", "UTC", 30, "FREQ=DAILY;BYDAY=MO;COUNT=999")
    started = time.perf_counter()
    assert s.occurrences_after(datetime(2199, 1, 1, tzinfo=UTC), 100) == []
    last = s.occurrences_after(datetime(1970, 1, 1, tzinfo=UTC), 100)
    assert time.perf_counter() - started < 0.5
    assert len(last) == 100


# -- the expansion matches dateutil ------------------------------------------------------------

_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _signed(low: int, high: int) -> st.SearchStrategy[int]:
    return st.tuples(st.integers(low, high), st.sampled_from([1, -1])).map(lambda t: t[0] * t[1])


@st.composite
def rules(draw: st.DrawFn) -> str:
    """RRULE texts within the parts we accept (validation refuses a few of them)."""
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.sampled_from([1, 2, 3, 4, 5, 7, 12, 14, 53, 100]))}")
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(_WEEKDAYS), min_size=1, max_size=3, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            numbers = _signed(1, 5 if freq == "MONTHLY" else 53)
            days = [f"{draw(numbers)}{d}" for d in days]
        parts.append("BYDAY=" + ",".join(days))
    if freq != "WEEKLY" and draw(st.booleans()):
        month_days = draw(st.lists(_signed(1, 31), min_size=1, max_size=3))
        parts.append("BYMONTHDAY=" + ",".join(str(d) for d in month_days))
    if draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
        parts.append("BYMONTH=" + ",".join(str(m) for m in months))
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(_WEEKDAYS))}")
    return ";".join(draw(st.permutations(parts)))


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much],
)
@given(text=rules(), start=st.dates(date(1970, 1, 1), date(2199, 12, 31)))
def test_expansion_matches_dateutil(text: str, start: date) -> None:
    try:
        rule = parse_rrule(text)
    except InvalidInput:
        event("refused")
        return  # e.g. BYDAY numbers out of range with BYMONTH
    assert rule is not None
    ours = list(itertools.islice(_dates(rule, start, None), 12))
    if rule.count is not None:
        ours = ours[: rule.count]
    if len(ours) < 12 and (rule.count is None or len(ours) < rule.count):
        event("sparse")
        return  # fewer before our horizon: dateutil would look on to year 9999
    event("compared")
    reference = rrulestr(rule.text, dtstart=datetime.combine(start, datetime.min.time()))
    assert [d.date() for d in itertools.islice(reference, 12)] == ours, rule.text
    if rule.count is None and len(ours) > 3:
        # Starting the walk near "now" changes nothing: no COUNT, no state from before.
        later = ours[1] + timedelta(days=1)
        assert list(itertools.islice(_dates(rule, start, later), 3)) == ours[2:5]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    zone=st.sampled_from(
        ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"]
    ),
    start=st.datetimes(datetime(1970, 1, 1), datetime(2199, 12, 31)),
    now=st.datetimes(datetime(1970, 1, 1), datetime(2299, 12, 31), timezones=st.just(UTC)),
    text=rules(),
)
def test_listed_occurrences_are_the_next_ones_after_now(
    zone: str, start: datetime, now: datetime, text: str
) -> None:
    try:
        schedule = Schedule.parse(start.isoformat(), zone, 45, text)
    except InvalidInput:
        event("refused")
        return
    found = schedule.occurrences_after(now, 5)
    assert len(found) <= 5
    assert all(o.end > now for o in found)
    assert all(b.start_utc > a.start_utc for a, b in itertools.pairwise(found))
    everything = list(itertools.islice(schedule._starts(schedule.start_local.date()), 2000))
    expected = [s for s in everything if s + schedule.duration > now][:5]
    if len(everything) < 2000:  # the whole series is known: compare exactly
        event("compared")
        assert [o.start for o in found] == expected


# -- the service: lists, invites -----------------------------------------------------------------


class _Store(MeetingStore):
    def __init__(self, meetings: list[Meeting]) -> None:
        super().__init__("meetings")
        self._meetings = meetings

    def meetings_of_host(self, host_id: str) -> list[Meeting]:
        return [m for m in self._meetings if m.host_id == host_id]


def _meeting(meeting_id: str, schedule: Schedule, **fields: Any) -> Meeting:
    return Meeting(
        meeting_id=meeting_id,
        host_id="u_host",
        title="T",
        kind="meeting",
        schedule=schedule,
        passcode=None,
        waiting_room=False,
        created_at=1_800_000_000,
        updated_at=1_800_000_000,
        **fields,
    )


def test_the_hosts_list_keeps_bad_meetings_after_coming_ones_flagged() -> None:
    later = _meeting("later", Schedule.parse("2027-09-01T09:00", "UTC", 30, None))
    sooner = _meeting("sooner", Schedule.parse("2027-07-01T09:00", "UTC", 30, "FREQ=WEEKLY"))
    past = _meeting("past", Schedule.parse("2020-07-01T09:00", "UTC", 30, None))
    bad = [_meeting(f"bad{i}", s) for i, (_, s) in enumerate(STORED_BAD)]
    store = _Store([later, bad[0], sooner, past, *bad[1:]])
    service = MeetingService(store, SessionStore("meetings"))
    host = AccessClaims(user_id="u_host", email="h@example.com", name="H", expires_at=0)

    listed = _within(5, lambda: service.listing(host, NOW))
    # What is coming first; then, in their stored order (none has run), the past and the bad.
    rest = [bad[0].meeting_id, "past", *(m.meeting_id for m in bad[1:])]
    assert [m.meeting_id for m, _ in listed] == ["sooner", "later", *rest]
    assert all(occurrences == [] for _, occurrences in listed[2:])
    with pytest.raises(Conflict, match="edit or delete"):
        service.invite(bad[0], "https://example.test/join.html?m=bad0")
