"""When a meeting happens: start, duration and time zone, and an optional RFC 5545 RRULE.

Start times are wall-clock times in the meeting's IANA time zone, so a weekly 09:00 stays at
09:00 across daylight-saving changes; UTC instants are derived, never stored as the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RecurrenceRule
from dateutil.rrule import rrulestr

from townhall.errors import InvalidInput

MAX_DURATION_MINUTES = 24 * 60
MAX_OCCURRENCES_LISTED = 100
# RRULE parts we accept. BYSETPOS, BYWEEKNO and friends are valid RFC 5545 but no calendar UI
# offers them for meetings; refusing them keeps invites portable.
_ALLOWED_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "WKST"}
_ALLOWED_FREQS = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # aware, in the meeting's time zone
    end: datetime

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)


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
        try:
            parsed = datetime.fromisoformat(start)
        except ValueError as exc:
            raise InvalidInput("start must be an ISO 8601 date-time") from exc
        if parsed.tzinfo is not None:
            # An instant was given: express it as wall time in the meeting's zone.
            parsed = parsed.astimezone(zone).replace(tzinfo=None)
        parsed = parsed.replace(second=0, microsecond=0)
        if not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
            raise InvalidInput(f"duration_minutes must be 1 to {MAX_DURATION_MINUTES}")
        schedule = cls(parsed, timezone, duration_minutes, normalize_rrule(rrule_text))
        schedule._rule()  # validates the rule against this start
        return schedule

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

    def occurrences_after(self, now: datetime, limit: int = 10) -> list[Occurrence]:
        """The next `limit` occurrences that have not ended by `now` (aware)."""
        limit = max(1, min(limit, MAX_OCCURRENCES_LISTED))
        rule = self._rule()
        if rule is None:
            occ = Occurrence(self.start, self.start + self.duration)
            return [occ] if occ.end > now else []
        found: list[Occurrence] = []
        # Wall-clock iteration: dateutil keeps the tzinfo and the wall time of dtstart.
        cursor = (now - self.duration).astimezone(self.zone)
        start = rule.after(cursor, inc=False)
        while start is not None and len(found) < limit:
            found.append(Occurrence(start, start + self.duration))
            start = rule.after(start, inc=False)
        return found

    def _rule(self) -> RecurrenceRule | None:
        if self.rrule is None:
            return None
        try:
            rule = rrulestr(self.rrule, dtstart=self.start, forceset=False)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"rrule is not valid RFC 5545: {exc}") from exc
        if not isinstance(rule, RecurrenceRule):
            raise InvalidInput("rrule must be a single RRULE")
        return rule


def parse_zone(name: str) -> ZoneInfo:
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise InvalidInput("timezone must be an IANA zone name such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown timezone {name!r}") from exc


def normalize_rrule(text: str | None) -> str | None:
    """Upper-case the parts, drop an `RRULE:` prefix, and refuse parts we do not support."""
    if text is None or not text.strip():
        return None
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if "\n" in body or "\r" in body or len(body) > 256:
        raise InvalidInput("rrule must be one RRULE line of at most 256 characters")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        if "=" not in part:
            raise InvalidInput(f"rrule part {part!r} is not NAME=VALUE")
        name, value = part.split("=", 1)
        name = name.strip().upper()
        if name not in _ALLOWED_PARTS:
            raise InvalidInput(f"rrule part {name} is not supported")
        parts[name] = value.strip().upper()
    if parts.get("FREQ") not in _ALLOWED_FREQS:
        raise InvalidInput("rrule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidInput("rrule may have COUNT or UNTIL, not both")
    return ";".join(f"{k}={v}" for k, v in parts.items())
