"""What people make together in a session: polls, questions and whiteboard strokes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PollStatus = Literal["open", "closed"]
QuestionStatus = Literal["open", "answered", "dismissed"]


@dataclass(frozen=True)
class Poll:
    poll_id: str
    question: str
    options: tuple[str, ...]
    multiple: bool
    status: PollStatus
    counts: tuple[int, ...]  # votes per option
    voters: int
    created_at: int  # ms
    created_by: str
    # Raised by one on every change: the highest version seen is the newest state.
    version: int

    @property
    def open(self) -> bool:
        return self.status == "open"

    def public(self) -> dict[str, Any]:
        """As clients see it (docs/signaling.md): counts, never anyone's choices."""
        return {
            "poll_id": self.poll_id,
            "question": self.question,
            "options": list(self.options),
            "multiple": self.multiple,
            "status": self.status,
            "counts": list(self.counts),
            "voters": self.voters,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "version": self.version,
        }


@dataclass(frozen=True)
class Question:
    question_id: str
    text: str
    asked_by: str
    asked_by_name: str
    votes: int
    status: QuestionStatus
    created_at: int  # ms
    version: int
    answer: str | None = None

    def public(self) -> dict[str, Any]:
        public: dict[str, Any] = {
            "question_id": self.question_id,
            "text": self.text,
            "asked_by": self.asked_by,
            "asked_by_name": self.asked_by_name,
            "votes": self.votes,
            "status": self.status,
            "created_at": self.created_at,
            "version": self.version,
        }
        if self.answer:
            public["answer"] = self.answer
        return public


@dataclass(frozen=True)
class Stroke:
    # The `seq` of the action that drew it: strokes sort by it.
    stroke_id: int
    by: str
    color: str
    width: float
    points: tuple[tuple[float, float], ...]  # normalized 0..1, four decimals
    room: str = ""  # the breakout room whose board it is on ("" for the main room)

    def public(self) -> dict[str, Any]:
        return {
            "stroke_id": self.stroke_id,
            "by": self.by,
            "color": self.color,
            "width": self.width,
            "points": [list(p) for p in self.points],
            "room": self.room,
        }
