"""Partition keys of the Meetings table.

A meeting's partition, `M#{meeting_id}`, holds its settings (`META`), its session index and
its media placement. Each session of it has a partition of its own,
`M#{meeting_id}#S#{session_id}`, with everything that happens in the room: its own `META`
(state and event counter), participants, chat, polls, questions, strokes, attendance and
request records. A session's writes therefore never contend with another session's, and a
session's items are read or deleted together.
"""

from __future__ import annotations

from townhall.model.session import SessionKey


def meeting_pk(meeting_id: str) -> str:
    return f"M#{meeting_id}"


def session_pk(session: SessionKey) -> str:
    return f"M#{session.meeting_id}#S#{session.session_id}"
