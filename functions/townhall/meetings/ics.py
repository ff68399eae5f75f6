"""An RFC 5545 calendar invite for a meeting, importable by calendar applications.

Times are written in the meeting's own zone with a generated VTIMEZONE, so a recurring meeting
keeps its wall-clock time across daylight-saving changes in every client.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from townhall.model.schedule import Schedule

PRODID = "-//Townhall//Meetings//EN"
_LINE_OCTETS = 75
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def render_invite(
    *,
    uid: str,
    title: str,
    description: str,
    url: str,
    schedule: Schedule,
    created: datetime,
    now: datetime,
    sequence: int = 0,
) -> str:
    tzid = schedule.timezone
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        *_vtimezone(schedule.zone, tzid, schedule.start_local.year, _last_year(schedule)),
        "BEGIN:VEVENT",
        f"UID:{_escape(uid)}",
        f"DTSTAMP:{_utc(now)}",
        f"CREATED:{_utc(created)}",
        f"SEQUENCE:{sequence}",
        f"DTSTART;TZID={tzid}:{_local(schedule.start_local)}",
        f"DURATION:{_duration(schedule.duration)}",
        *([f"RRULE:{schedule.rrule}"] if schedule.rrule else []),
        f"SUMMARY:{_escape(title)}",
        f"DESCRIPTION:{_escape(description)}",
        f"LOCATION:{_escape(url)}",
        f"URL:{url}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def _last_year(schedule: Schedule) -> int:
    # Enough transitions to cover a rule's likely span; clients extrapolate beyond the last.
    return schedule.start_local.year + (2 if schedule.rrule else 0)


def _vtimezone(zone: ZoneInfo, tzid: str, first_year: int, last_year: int) -> list[str]:
    """One STANDARD or DAYLIGHT block per UTC-offset change in the years covered."""
    start = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    blocks: list[str] = []
    offset = start.astimezone(zone).utcoffset() or timedelta(0)
    base_dst = bool(start.astimezone(zone).dst())
    cursor = start
    while cursor < end:
        nxt = min(cursor + timedelta(days=1), end)
        next_offset = nxt.astimezone(zone).utcoffset() or timedelta(0)
        if next_offset != offset:
            instant = _find_change(zone, cursor, nxt, offset)
            after = instant.astimezone(zone)
            kind = "DAYLIGHT" if after.dst() else "STANDARD"
            wall_before = (instant + offset).replace(tzinfo=None)
            blocks += [
                f"BEGIN:{kind}",
                f"DTSTART:{_local(wall_before)}",
                f"TZOFFSETFROM:{_offset(offset)}",
                f"TZOFFSETTO:{_offset(next_offset)}",
                f"TZNAME:{_escape(after.tzname() or tzid)}",
                f"END:{kind}",
            ]
            offset = next_offset
        cursor = nxt
    if not blocks:
        kind = "DAYLIGHT" if base_dst else "STANDARD"
        name = start.astimezone(zone).tzname() or tzid
        blocks = [
            f"BEGIN:{kind}",
            "DTSTART:19700101T000000",
            f"TZOFFSETFROM:{_offset(offset)}",
            f"TZOFFSETTO:{_offset(offset)}",
            f"TZNAME:{_escape(name)}",
            f"END:{kind}",
        ]
    return ["BEGIN:VTIMEZONE", f"TZID:{tzid}", *blocks, "END:VTIMEZONE"]


def _find_change(zone: ZoneInfo, lo: datetime, hi: datetime, old: timedelta) -> datetime:
    """The first instant in (lo, hi] whose offset differs from `old`, to the minute."""
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(second=0, microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(minutes=1)
        if (mid.astimezone(zone).utcoffset() or timedelta(0)) == old:
            lo = mid
        else:
            hi = mid
    return hi


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes or not hours else "")


def _escape(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )
    # RFC 5545 TEXT allows no control character but HTAB. Names are refused with them today
    # (auth.accounts.clean_name); a title stored before that must still give a valid file.
    return _CONTROLS.sub("", escaped)


def _fold(line: str) -> str:
    """Fold at 75 octets (RFC 5545 3.1) without splitting a UTF-8 character."""
    data = line.encode()
    if len(data) <= _LINE_OCTETS:
        return line
    parts: list[str] = []
    limit = _LINE_OCTETS
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(data[:cut].decode())
        data = data[cut:]
        limit = _LINE_OCTETS - 1  # continuation lines start with a space
    return "\r\n ".join(parts)
