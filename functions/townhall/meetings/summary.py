"""The summary of a meeting for its host: attendance, the public chat transcript, poll results
and questions, read from the meeting's partition (plain reads; no AWS beyond the stores)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from townhall.store import dynamo
from townhall.store.attendance import AttendanceStore
from townhall.store.meetings import Meeting, MeetingStore, meeting_pk
from townhall.store.polls import PollStore
from townhall.store.questions import QuestionStore


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SummaryReader:
    def __init__(self, meetings: MeetingStore) -> None:
        self._meetings = meetings
        self._attendance = AttendanceStore(meetings.table)
        self._polls = PollStore(meetings.table)
        self._questions = QuestionStore(meetings.table)

    def summary(self, meeting: Meeting, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        attendance = self.attendance(meeting, now)
        firsts = [s["joined_at"] for a in attendance for s in a["_sessions"]]
        for a in attendance:
            a.pop("_sessions")
        return {
            "meeting": {
                "meeting_id": meeting.meeting_id,
                "title": meeting.title,
                "started_at": iso(min(firsts) / 1000) if firsts else None,
                "ended_at": iso(meeting.ended_at) if meeting.ended_at else None,
            },
            "attendance": attendance,
            "chat": self.chat(meeting.meeting_id),
            "polls": [
                {
                    "question": p["question"],
                    "options": p["options"],
                    "counts": p["counts"],
                    "voters": p["voters"],
                    "status": p["status"],
                    "multiple": p["multiple"],
                }
                for p in self._polls.polls(meeting.meeting_id)
            ],
            "questions": [
                {
                    "text": q["text"],
                    "asked_by_name": q["asked_by_name"],
                    "votes": q["votes"],
                    "status": q["status"],
                    "answer": q.get("answer"),
                    "asked_at": iso(q["created_at"] / 1000),
                }
                for q in self._questions.questions(meeting.meeting_id)
            ],
        }

    def attendance(self, meeting: Meeting, now: float) -> list[dict[str, Any]]:
        """One entry per participant who was ever admitted, by first arrival. A session still
        open ends at the meeting's end, or is open (left_at null) while the meeting runs."""
        people = {p.participant_id: p for p in self._meetings.participants(meeting.meeting_id)}
        by_person: dict[str, list[dict[str, Any]]] = {}
        for s in self._attendance.sessions(meeting.meeting_id):
            by_person.setdefault(s["participant_id"], []).append(s)
        result: list[dict[str, Any]] = []
        for pid, sessions in by_person.items():
            p = people.get(pid)
            rows, total = [], 0.0
            for s in sessions:
                joined = s["joined_at"] / 1000
                left = s["left_at"] / 1000 if s.get("left_at") else None
                if left is None and meeting.ended_at:
                    left = max(float(meeting.ended_at), joined)
                total += (left if left is not None else now) - joined
                rows.append({"joined_at": iso(joined), "left_at": iso(left)})
            result.append(
                {
                    "participant_id": pid,
                    "name": p.name if p else pid,
                    "role": p.role if p else "attendee",
                    "sessions": rows,
                    "total_seconds": max(0, round(total)),
                    "_sessions": sessions,
                }
            )
        result.sort(key=lambda a: a["_sessions"][0]["joined_at"])
        return result

    def chat(self, meeting_id: str) -> list[dict[str, Any]]:
        """The public transcript in order (private messages stay private, even from the host)."""
        items = dynamo.query_all(
            self._meetings.table,
            "pk = :pk AND begins_with(sk, :c)",
            {":pk": meeting_pk(meeting_id), ":c": "C#"},
            consistent=True,
        )
        return [
            {"at": iso(m["ts"] / 1000), "from_name": m["from_name"], "text": m["text"]}
            for m in items
            if not m.get("private")
        ]
