"""When a meeting happens: start, duration and time zone, and an optional RFC 5545 RRULE.

Start times are wall-clock times in the meeting's IANA time zone, so a weekly 09:00 stays at
09:00 across daylight-saving changes; UTC instants are derived, never stored as the truth.

Everything a host sends is validated here before anything is written, and everything read back
is checked again (`Schedule.problem`): an item written before these checks, or by hand, must
degrade to "no occurrences, and a note why" for that one meeting, never break a list.

Occurrences are expanded by this module, not by dateutil: dateutil walks every period from the
start until year 9999 when a rule matches nothing (`FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31` takes
seconds; `INTERVAL=0` never ends), and restarts from the start for each `after()`. Here the
expansion is month by month over a fixed window of years, so its cost has a hard ceiling (see
`_month_steps`); the results match dateutil's for every rule we accept (tests/unit).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from townhall.errors import InvalidInput

MAX_DURATION_MINUTES = 24 * 60
MAX_OCCURRENCES_LISTED = 100
# The years a meeting may start in. Far from years 1 and 9999, so every derived instant (UTC,
# any zone's offset, an occurrence's end, the ICS's time-zone blocks a few years on) exists.
FIRST_YEAR = 1970
LAST_START_YEAR = 2199
# No occurrence is computed, and no UNTIL accepted, after the end of this year: the horizon
# that bounds every expansion (a century past the last possible start).
LAST_YEAR = 2299
# Outlook's limits (999 occurrences, every 999 periods); no meeting series needs more, and
# small numbers keep COUNT's walk from the start short.
MAX_COUNT = 999
MAX_INTERVAL = 999
# RRULE parts we accept. BYSETPOS, BYWEEKNO and friends are valid RFC 5545 but no calendar UI
# offers them for meetings; refusing them keeps invites portable.
_ALLOWED_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "WKST")
Frequency = Literal["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
_FREQUENCIES: tuple[Frequency, ...] = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# ASCII digits only: int() alone would take Arabic-Indic digits, "1_0" and " 7 ".
_NUMBER = re.compile(r"[0-9]{1,9}")
_SIGNED = re.compile(r"[+-]?[0-9]{1,9}")
_BYDAY = re.compile(r"([+-]?[0-9]{1,9})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
# IANA names: letters, digits and _ + - in /-separated parts (also refuses NUL, surrogates).
_ZONE = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")
_MAX_START_TEXT = 64


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # aware, in the meeting's time zone
    end: datetime

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)


@dataclass(frozen=True)
class Recurrence:
    """A parsed, validated RRULE; `text` is its normalized form, the one stored."""

    text: str
    freq: Frequency
    interval: int = 1
    count: int | None = None
    until: datetime | None = None  # aware, UTC
    weekdays: frozenset[int] = frozenset()  # BYDAY without a number (0 = Monday)
    nth_weekdays: frozenset[tuple[int, int]] = frozenset()  # BYDAY with one: (n, weekday)
    month_days: frozenset[int] = frozenset()  # BYMONTHDAY, negative from the month's end
    months: frozenset[int] = frozenset()
    week_start: int = 0


@dataclass(frozen=True)
class Schedule:
    start_local: datetime  # naive wall-clock time in `timezone`
    timezone: str
    duration_minutes: int
    rrule: str | None = None

    @classmethod
    def parse(
        cls, start: str, timezone: str, duration_minutes: int, rrule_text: str | None
    ) -> Schedule:
        zone = parse_zone(timezone)
        if len(start) > _MAX_START_TEXT:
            raise InvalidInput("start must be an ISO 8601 date-time")
        try:
            parsed = datetime.fromisoformat(start)
        except ValueError as exc:
            raise InvalidInput("start must be an ISO 8601 date-time") from exc
        if parsed.tzinfo is not None:
            # An instant was given: express it as wall time in the meeting's zone. Checked
            # first (a year to spare for the offset) so that the conversion cannot overflow.
            _check_year(parsed.year, FIRST_YEAR - 1, LAST_START_YEAR + 1)
            parsed = parsed.astimezone(zone).replace(tzinfo=None)
        parsed = parsed.replace(second=0, microsecond=0)
        schedule = cls(parsed, timezone, duration_minutes, normalize_rrule(rrule_text))
        schedule.validate()
        if schedule.recurrence is not None and schedule.first_start() is None:
            raise InvalidInput(
                f"rrule matches no date from the start to the end of {LAST_YEAR}"
                " (a day that does not exist, such as 31 February, or a weekday that"
                " INTERVAL never lands on?)"
            )
        return schedule

    def validate(self) -> None:
        """Raise InvalidInput unless every field is one `parse` would have produced.

        Cheap (no expansion): run on every item read back, through `problem`."""
        if not isinstance(self.start_local, datetime) or self.start_local.tzinfo is not None:
            raise InvalidInput("start must be a wall-clock date-time")
        _check_year(self.start_local.year, FIRST_YEAR, LAST_START_YEAR)
        if not isinstance(self.timezone, str):
            raise InvalidInput("timezone must be an IANA zone name such as Europe/Paris")
        parse_zone(self.timezone)
        if not isinstance(self.duration_minutes, int) or not (
            1 <= self.duration_minutes <= MAX_DURATION_MINUTES
        ):
            raise InvalidInput(f"duration_minutes must be 1 to {MAX_DURATION_MINUTES}")
        if self.rrule is not None and not isinstance(self.rrule, str):
            raise InvalidInput("rrule must be text")
        rule = parse_rrule(self.rrule)
        if rule is not None and rule.until is not None and rule.until < self.start_utc:
            raise InvalidInput("rrule UNTIL is before the start")

    @cached_property
    def problem(self) -> str | None:
        """Why this schedule (as stored) cannot be used, or None. Never raises."""
        try:
            self.validate()
        except InvalidInput as exc:
            return exc.message
        except (TypeError, ValueError, OverflowError):  # a hand-written item of another shape
            return "the stored schedule is not readable"
        return None

    @cached_property
    def recurrence(self) -> Recurrence | None:
        return parse_rrule(self.rrule)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        return self.start_local.replace(tzinfo=self.zone)

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    def first_start(self) -> datetime | None:
        """The first occurrence's start (aware), or None if the rule never matches."""
        found = self._starts(self.start_local.date())
        return next(found, None)

    def occurrences_after(self, now: datetime, limit: int = 10) -> list[Occurrence]:
        """The next `limit` occurrences that have not ended by `now` (aware).

        Empty for a schedule with a `problem`: callers show the problem instead."""
        if self.problem is not None:
            return []
        limit = max(1, min(limit, MAX_OCCURRENCES_LISTED))
        rule = self.recurrence
        if rule is None:
            occ = Occurrence(self.start, self.start + self.duration)
            return [occ] if occ.end > now else []
        cursor = now - self.duration
        first = self.start_local.date()
        if rule.count is None and cursor > self.start_utc:
            # Without COUNT nothing depends on the occurrences before the cursor, so the walk
            # starts near it; two days early covers any zone's offset from UTC.
            if cursor.year > LAST_YEAR:
                return []
            first = max(first, cursor.astimezone(self.zone).date() - timedelta(days=2))
        found: list[Occurrence] = []
        for start in self._starts(first):
            if start > cursor:  # instants: aware datetimes in different zones
                found.append(Occurrence(start, start + self.duration))
                if len(found) >= limit:
                    break
        return found

    def _starts(self, first: date) -> Iterator[datetime]:
        """Occurrence starts (aware) on or after `first`, in order, honouring COUNT and UNTIL."""
        rule = self.recurrence
        if rule is None:
            yield self.start
            return
        at = self.start_local.time()
        zone = self.zone
        # COUNT counts from the start, so a counted walk always begins there.
        days = _dates(rule, self.start_local.date(), first if rule.count is None else None)
        for counted, day in enumerate(days, start=1):
            start = datetime.combine(day, at, tzinfo=zone)
            if rule.until is not None and start > rule.until:
                return
            if rule.count is not None and counted > rule.count:
                return
            if day >= first:
                yield start


def parse_zone(name: str) -> ZoneInfo:
    if not name or len(name) > 64 or not _ZONE.fullmatch(name):
        raise InvalidInput("timezone must be an IANA zone name such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(f"unknown timezone {name!r}") from exc


def normalize_rrule(text: str | None) -> str | None:
    """Upper-case the parts, drop an `RRULE:` prefix, and refuse what we do not support."""
    rule = parse_rrule(text)
    return rule.text if rule is not None else None


def parse_rrule(text: str | None) -> Recurrence | None:
    """Parse and validate one RRULE value (RFC 5545 3.3.10) within this module's limits."""
    if text is None or not text.strip():
        return None
    if len(text) > 256 or not text.isascii() or not text.isprintable():
        raise InvalidInput("rrule must be one line of at most 256 ASCII characters")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    values: dict[str, str] = {}
    for part in body.split(";"):  # at most 129 parts: the text is at most 256 characters
        name, equals, value = part.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not equals or not name or not value:
            raise InvalidInput(f"rrule part {part!r} is not NAME=VALUE")
        if name not in _ALLOWED_PARTS:
            raise InvalidInput(f"rrule part {name} is not supported")
        if name in values:
            raise InvalidInput(f"rrule part {name} is given twice")  # RFC 5545: once each
        values[name] = value

    freq = values.get("FREQ")
    if freq not in _FREQUENCIES:
        raise InvalidInput("rrule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY")
    if "COUNT" in values and "UNTIL" in values:
        raise InvalidInput("rrule may have COUNT or UNTIL, not both")
    interval = _number(values, "INTERVAL", 1, MAX_INTERVAL) or 1
    count = _number(values, "COUNT", 1, MAX_COUNT)
    until = _until(values["UNTIL"]) if "UNTIL" in values else None
    months = frozenset(_list(values, "BYMONTH", 1, 12, signed=False))
    month_days = frozenset(_list(values, "BYMONTHDAY", 1, 31, signed=True))
    if month_days and freq == "WEEKLY":
        raise InvalidInput("rrule BYMONTHDAY cannot be used with FREQ=WEEKLY")  # RFC 5545
    week_start = _weekday(values["WKST"], "WKST") if "WKST" in values else 0
    weekdays, nth_weekdays = _byday(values.get("BYDAY"), freq, bool(months))

    canonical = {
        "FREQ": freq,
        "INTERVAL": str(interval),
        "COUNT": str(count),
        "UNTIL": values.get("UNTIL", ""),
        "BYDAY": _byday_text(values.get("BYDAY")),
        "BYMONTHDAY": _list_text(values, "BYMONTHDAY"),
        "BYMONTH": _list_text(values, "BYMONTH"),
        "WKST": values.get("WKST", ""),
    }
    return Recurrence(
        text=";".join(f"{name}={canonical[name]}" for name in values),
        freq=freq,
        interval=interval,
        count=count,
        until=until,
        weekdays=weekdays,
        nth_weekdays=nth_weekdays,
        month_days=month_days,
        months=months,
        week_start=week_start,
    )


def _check_year(year: int, low: int, high: int) -> None:
    if not low <= year <= high:
        raise InvalidInput(f"start must be in the years {FIRST_YEAR} to {LAST_START_YEAR}")


def _number(values: dict[str, str], name: str, low: int, high: int) -> int | None:
    if name not in values:
        return None
    text = values[name]
    if not _NUMBER.fullmatch(text) or not low <= int(text) <= high:
        raise InvalidInput(f"rrule {name} must be a whole number from {low} to {high}")
    return int(text)


def _list(values: dict[str, str], name: str, low: int, high: int, *, signed: bool) -> list[int]:
    """A comma-separated list of numbers from low to high (or -high to -low when signed)."""
    if name not in values:
        return []
    found = []
    for item in values[name].split(","):
        pattern = _SIGNED if signed else _NUMBER
        number = int(item) if pattern.fullmatch(item) else 0
        if not low <= abs(number) <= high or (number < 0 and not signed):
            span = f"{low} to {high}" + (f" or -{high} to -{low}" if signed else "")
            raise InvalidInput(f"rrule {name} values must be {span}")
        found.append(number)
    return found


def _list_text(values: dict[str, str], name: str) -> str:
    # Canonical numbers ("07" and "+7" become "7"), duplicates dropped, order kept.
    return ",".join(
        dict.fromkeys(str(int(item)) for item in values.get(name, "").split(",") if item)
    )


def _weekday(text: str, name: str) -> int:
    if text not in _WEEKDAYS:
        raise InvalidInput(f"rrule {name} must be one of {', '.join(_WEEKDAYS)}")
    return _WEEKDAYS.index(text)


def _byday(
    text: str | None, freq: Frequency, has_months: bool
) -> tuple[frozenset[int], frozenset[tuple[int, int]]]:
    if text is None:
        return frozenset(), frozenset()
    plain: set[int] = set()
    numbered: set[tuple[int, int]] = set()
    # RFC 5545: a numbered BYDAY is the nth in the month for MONTHLY (or YEARLY with BYMONTH),
    # in the year for YEARLY, and not allowed with DAILY or WEEKLY.
    limit = 5 if freq == "MONTHLY" or has_months else 53
    for item in text.split(","):
        match = _BYDAY.fullmatch(item)
        if match is None:
            raise InvalidInput(f"rrule BYDAY value {item!r} is not a weekday such as MO or -1FR")
        weekday = _WEEKDAYS.index(match.group(2))
        if match.group(1) is None:
            plain.add(weekday)
            continue
        n = int(match.group(1))
        if freq in ("DAILY", "WEEKLY"):
            raise InvalidInput("rrule BYDAY numbers (like 1MO) need FREQ=MONTHLY or YEARLY")
        if not 1 <= abs(n) <= limit:
            raise InvalidInput(f"rrule BYDAY numbers must be 1 to {limit} or -{limit} to -1")
        numbered.add((n, weekday))
    if plain and numbered:
        # Valid RFC 5545 (the union of both), but dateutil reads it as "both at once" and
        # finds nothing: refused so that the dates cannot depend on the tool that reads them.
        raise InvalidInput("rrule BYDAY cannot mix plain and numbered weekdays")
    return frozenset(plain), frozenset(numbered)


def _byday_text(text: str | None) -> str:
    if text is None:
        return ""
    items = []
    for item in text.split(","):
        match = _BYDAY.fullmatch(item)
        assert match is not None  # checked by _byday
        items.append((str(int(match.group(1))) if match.group(1) else "") + match.group(2))
    return ",".join(dict.fromkeys(items))


def _until(text: str) -> datetime:
    # RFC 5545: with a DTSTART in a time zone (ours always is), UNTIL is a UTC date-time.
    match = _UNTIL.fullmatch(text)
    message = "rrule UNTIL must be a UTC date-time such as 20271231T235959Z"
    if match is None:
        raise InvalidInput(message)
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInput(f"rrule UNTIL must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInput(message) from exc


# -- expansion ----------------------------------------------------------------------------------


def _month_steps() -> int:
    """The most months any expansion visits: every month of the window of years.

    This is the iteration bound. The walk goes month by month and looks at no more than the
    31 days of each, so one expansion costs at most ~4,000 cheap steps (a few ms) whatever the
    rule: a rule that matches nothing for centuries (BYMONTHDAY=31;BYMONTH=2 passes validation
    only if something else matches) ends at LAST_YEAR instead of spinning on to year 9999."""
    return (LAST_YEAR - FIRST_YEAR + 1) * 12


def _dates(rule: Recurrence, start: date, first: date | None) -> Iterator[date]:
    """The rule's dates from `start` (DTSTART's date) on, in order, skipping those before
    `first` when given: the set dateutil computes for the parts we accept. Day arithmetic is
    on ordinals, so a month costs at most 31 integer checks."""
    months, month_days, weekdays = rule.months, rule.month_days, rule.weekdays
    if not (month_days or weekdays or rule.nth_weekdays):
        # RFC 5545's defaults: what DTSTART says about the parts the rule leaves out.
        if rule.freq == "YEARLY":
            months = months or frozenset({start.month})
            month_days = frozenset({start.day})
        elif rule.freq == "MONTHLY":
            month_days = frozenset({start.day})
        elif rule.freq == "WEEKLY":
            weekdays = frozenset({start.weekday()})
    start_ordinal = start.toordinal()
    start_week = _week_of(start_ordinal, rule.week_start)
    begin = max(start, first) if first is not None else start
    begin_ordinal = begin.toordinal()
    month_index = begin.year * 12 + begin.month - 1
    for _ in range(_month_steps()):
        year, month0 = divmod(month_index, 12)
        month_index += 1
        if year > LAST_YEAR:
            return
        month = month0 + 1
        if months and month not in months:
            continue
        if rule.freq == "YEARLY" and (year - start.year) % rule.interval:
            continue
        if (
            rule.freq == "MONTHLY"
            and ((year - start.year) * 12 + month - start.month) % rule.interval
        ):
            continue
        first_weekday, length = calendar.monthrange(year, month)
        base = date(year, month, 1).toordinal() - 1  # the ordinal of day d is base + d
        days: Iterable[int] = range(1, length + 1)
        if month_days:
            days = sorted({d if d > 0 else length + 1 + d for d in month_days if abs(d) <= length})
        nth = _nth_days(rule, year, month, bool(months))
        for day in days:
            ordinal = base + day
            if ordinal < begin_ordinal:
                continue
            if weekdays and (first_weekday + day - 1) % 7 not in weekdays:
                continue
            if nth is not None and day not in nth:
                continue
            if rule.freq == "DAILY" and (ordinal - start_ordinal) % rule.interval:
                continue
            if (
                rule.freq == "WEEKLY"
                and (_week_of(ordinal, rule.week_start) - start_week) % rule.interval
            ):
                continue
            yield date.fromordinal(ordinal)


def _week_of(ordinal: int, week_start: int) -> int:
    """A running week number for a day ordinal, weeks beginning on `week_start` (WKST)."""
    weekday = (ordinal + 6) % 7  # ordinal 1, 1 January of year 1, was a Monday
    return (ordinal - (weekday - week_start) % 7) // 7


def _nth_days(rule: Recurrence, year: int, month: int, by_month: bool) -> set[int] | None:
    """The days of this month that are a numbered BYDAY (like 2TU or -1FR), or None if the
    rule has none: counted in the month for MONTHLY or YEARLY with BYMONTH, else in the year."""
    if not rule.nth_weekdays:
        return None
    in_year = rule.freq == "YEARLY" and not by_month
    first = date(year, 1, 1) if in_year else date(year, month, 1)
    last = date(year, 12, 31) if in_year else date(year, month, calendar.monthrange(year, month)[1])
    found: set[int] = set()
    for n, weekday in rule.nth_weekdays:
        if n > 0:
            day = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
        else:
            day = last - timedelta(days=(last.weekday() - weekday) % 7 + 7 * (-n - 1))
        if first <= day <= last and day.month == month:
            found.add(day.day)
    return found
