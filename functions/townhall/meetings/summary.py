"""The summary of one session for its host: attendance (with who was in which breakout room,
and when), the public chat transcript, poll results and questions (plain reads of the
session's partition)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from townhall import clock
from townhall.model.breakout import Breakouts
from townhall.model.session import Session
from townhall.store.attendance import AttendanceStore
from townhall.store.breakouts import BreakoutStore
from townhall.store.chat import ChatStore
from townhall.store.participants import ParticipantStore
from townhall.store.polls import PollStore
from townhall.store.questions import QuestionStore


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SummaryReader:
    def __init__(self, table: str) -> None:
        self._participants = ParticipantStore(table)
        self._attendance = AttendanceStore(table)
        self._chat = ChatStore(table)
        self._polls = PollStore(table)
        self._questions = QuestionStore(table)
        self._breakouts = BreakoutStore(table)

    def summary(self, session: Session, now: float | None = None) -> dict[str, Any]:
        now = clock.now() if now is None else now
        key = session.key
        rooms = self._breakouts.get(key)
        return {
            "meeting": {
                "meeting_id": session.meeting_id,
                "session_id": session.session_id,
                "title": session.title,
                "started_at": iso(session.started_at / 1000),
                "ended_at": iso(session.ended_at / 1000) if session.ended_at else None,
            },
            "attendance": self.attendance(session, now),
            "rooms": [{"room_id": r.room_id, "name": r.name} for r in rooms.rooms],
            "chat": [
                {
                    "at": iso(m.ts / 1000),
                    "from_name": m.sender_name,
                    "text": m.text,
                    "room": rooms.name_of(m.room) if m.room else None,
                }
                for m in self._chat.all(key)
                if not m.private  # private messages stay private, even from the host
            ],
            "polls": [
                {
                    "question": p.question,
                    "options": list(p.options),
                    "counts": list(p.counts),
                    "voters": p.voters,
                    "status": p.status,
                    "multiple": p.multiple,
                }
                for p in self._polls.polls(key)
            ],
            "questions": [
                {
                    "text": q.text,
                    "asked_by_name": q.asked_by_name,
                    "votes": q.votes,
                    "status": q.status,
                    "answer": q.answer,
                    "asked_at": iso(q.created_at / 1000),
                }
                for q in self._questions.questions(key)
            ],
        }

    def attendance(self, session: Session, now: float) -> list[dict[str, Any]]:
        """One entry per person who was ever admitted, by first arrival, with every interval
        they spent in the session. An interval still open ends at the session's end, or is
        open (left_at null) while the session runs."""
        people = {p.participant_id: p for p in self._participants.all(session.key)}
        by_person: dict[str, list[dict[str, Any]]] = {}
        for interval in self._attendance.intervals(session.key):
            by_person.setdefault(interval["participant_id"], []).append(interval)
        breakouts = self._breakouts.get(session.key)
        visits: dict[str, list[dict[str, Any]]] = {}
        for visit in self._breakouts.visits(session.key):
            visits.setdefault(visit["participant_id"], []).append(visit)
        result: list[tuple[int, dict[str, Any]]] = []
        for pid, intervals in by_person.items():
            p = people.get(pid)
            rows, total = [], 0.0
            for interval in intervals:
                joined = interval["joined_at"] / 1000
                left = interval["left_at"] / 1000 if interval.get("left_at") else None
                if left is None and session.ended_at:
                    left = max(session.ended_at / 1000, joined)
                total += (left if left is not None else now) - joined
                rows.append({"joined_at": iso(joined), "left_at": iso(left)})
            entry = {
                "participant_id": pid,
                "name": p.name if p else pid,
                "role": p.role if p else "attendee",
                "intervals": rows,
                "total_seconds": max(0, round(total)),
                "rooms": _room_stays(visits.get(pid, []), intervals, session, now, breakouts),
            }
            result.append((intervals[0]["joined_at"], entry))
        result.sort(key=lambda pair: pair[0])
        return [entry for _, entry in result]


def _room_stays(
    visits: list[dict[str, Any]],
    intervals: list[dict[str, Any]],
    session: Session,
    now: float,
    breakouts: Breakouts,
) -> list[dict[str, Any]]:
    """The breakout rooms a person was in, each stay from entering it until they entered
    another room (or the main room) or their attendance interval ended, whichever came
    first."""
    session_end = session.ended_at / 1000 if session.ended_at else now
    stays: list[dict[str, Any]] = []
    for i, visit in enumerate(visits):
        if not visit["room_id"]:
            continue
        start = visit["at"] / 1000
        end = visits[i + 1]["at"] / 1000 if i + 1 < len(visits) else session_end
        for interval in intervals:
            joined = interval["joined_at"] / 1000
            left = interval["left_at"] / 1000 if interval.get("left_at") else session_end
            if joined <= start <= left:
                end = min(end, left)
                break
        stays.append(
            {
                "room_id": visit["room_id"],
                "room": breakouts.name_of(visit["room_id"]),
                "from": iso(start),
                "to": iso(end) if end < now or session.ended_at else None,
            }
        )
    return stays
