"""The states an event's payload may name as its subject, read at delivery."""

from __future__ import annotations

from typing import Any

from townhall.model.session import SessionKey
from townhall.store.polls import PollRecords
from townhall.store.questions import QuestionRecords


class PollAndQuestionStates:
    """`poll:<id>` is `{"poll": ...}` and `question:<id>` is `{"question": ...}`, as the
    actions' events carry them."""

    def __init__(self, polls: PollRecords, questions: QuestionRecords) -> None:
        self._polls = polls
        self._questions = questions

    def current(self, session: SessionKey, subject: str) -> dict[str, Any] | None:
        kind, _, item_id = subject.partition(":")
        if kind == "poll":
            poll = self._polls.get(session, item_id)
            return {"poll": poll.public()} if poll is not None else None
        if kind == "question":
            question = self._questions.get(session, item_id)
            return {"question": question.public()} if question is not None else None
        return None
