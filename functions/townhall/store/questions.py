"""Q&A in the Meetings table (a session's partition, `store.keys.session_pk`).

- `Q#{question_id}`: text, asked_by, asked_by_name, votes, status (open, answered,
  dismissed), answer, created_at (ms) and `version`, raised by one on every change, so
  clients keep the newest state whatever order events arrive in.
- `U#{question_id}#{participant_id}`: one participant's upvote, created with
  `attribute_not_exists` in the same transaction as the vote count: once per participant.
"""

from __future__ import annotations

from typing import Any, Protocol

from townhall.model.collaboration import Question
from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk
from townhall.store.writes import (
    AlreadyUpvoted,
    AnswerQuestion,
    AskQuestion,
    DismissQuestion,
    QuestionDismissed,
    UpvoteQuestion,
)


def question_sk(question_id: str) -> str:
    return f"Q#{question_id}"


def upvote_sk(question_id: str, participant_id: str) -> str:
    return f"U#{question_id}#{participant_id}"


def question_from_item(item: dict[str, Any]) -> Question:
    return Question(
        question_id=item["question_id"],
        text=item["text"],
        asked_by=item["asked_by"],
        asked_by_name=item["asked_by_name"],
        votes=int(item["votes"]),
        status=item["status"],
        created_at=int(item["created_at"]),
        version=int(item["version"]),
        answer=item.get("answer") or None,
    )


def ask_question(table: str, session: SessionKey, op: AskQuestion) -> list[dynamo.TransactItem]:
    question = op.question
    item = {"pk": session_pk(session), "sk": question_sk(question.question_id), **question.public()}
    return [dynamo.TransactItem(dynamo.put_new(table, item))]


def upvote_question(
    table: str, session: SessionKey, op: UpvoteQuestion
) -> list[dynamo.TransactItem]:
    """The upvoter's record (refused on a second upvote) and the count (refused once the
    question is dismissed)."""
    pk = session_pk(session)
    record = {"pk": pk, "sk": upvote_sk(op.question_id, op.participant_id), "at": op.at}
    return [
        dynamo.TransactItem(dynamo.put_new(table, record), AlreadyUpvoted()),
        dynamo.TransactItem(
            dynamo.update(
                table,
                {"pk": pk, "sk": question_sk(op.question_id)},
                "ADD votes :one, version :one",
                {":one": 1, ":dismissed": "dismissed"},
                condition="attribute_exists(pk) AND #s <> :dismissed",
                names={"#s": "status"},
            ),
            QuestionDismissed(),
        ),
    ]


def answer_question(
    table: str, session: SessionKey, op: AnswerQuestion
) -> list[dynamo.TransactItem]:
    values: dict[str, Any] = {":one": 1, ":answered": "answered", ":dismissed": "dismissed"}
    expression = "SET #s = :answered ADD version :one"
    if op.answer:
        values[":answer"] = op.answer
        expression = "SET #s = :answered, answer = :answer ADD version :one"
    update = dynamo.update(
        table,
        {"pk": session_pk(session), "sk": question_sk(op.question_id)},
        expression,
        values,
        condition="attribute_exists(pk) AND #s <> :dismissed",
        names={"#s": "status"},
    )
    return [dynamo.TransactItem(update, QuestionDismissed())]


def dismiss_question(
    table: str, session: SessionKey, op: DismissQuestion
) -> list[dynamo.TransactItem]:
    update = dynamo.update(
        table,
        {"pk": session_pk(session), "sk": question_sk(op.question_id)},
        "SET #s = :dismissed ADD version :one",
        {":one": 1, ":dismissed": "dismissed"},
        condition="attribute_exists(pk) AND #s <> :dismissed",
        names={"#s": "status"},
    )
    return [dynamo.TransactItem(update, QuestionDismissed())]


class QuestionRecords(Protocol):
    """A session's questions as the services read them (QuestionStore is the DynamoDB one;
    they are written by `AskQuestion`, `UpvoteQuestion`, `AnswerQuestion` and
    `DismissQuestion`)."""

    def questions(self, session: SessionKey) -> list[Question]: ...

    def get(self, session: SessionKey, question_id: str) -> Question | None: ...

    def get_with_upvote(
        self, session: SessionKey, question_id: str, participant_id: str
    ) -> tuple[Question | None, bool]: ...


@dynamo.store_boundary
class QuestionStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def questions(self, session: SessionKey) -> list[Question]:
        """Every question, most votes first, then oldest first (the order clients show)."""
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :q)",
            {":pk": session_pk(session), ":q": "Q#"},
            consistent=True,
        )
        return sorted(
            (question_from_item(i) for i in items), key=lambda q: (-q.votes, q.created_at)
        )

    def get(self, session: SessionKey, question_id: str) -> Question | None:
        key = {"pk": session_pk(session), "sk": question_sk(question_id)}
        item = dynamo.get(self._table, key)
        return question_from_item(item) if item else None

    def get_with_upvote(
        self, session: SessionKey, question_id: str, participant_id: str
    ) -> tuple[Question | None, bool]:
        """The question and whether the participant upvoted it, in one round trip."""
        pk = session_pk(session)
        found = {
            i["sk"]: i
            for i in dynamo.batch_get(
                self._table,
                [
                    {"pk": pk, "sk": question_sk(question_id)},
                    {"pk": pk, "sk": upvote_sk(question_id, participant_id)},
                ],
            )
        }
        question = found.get(question_sk(question_id))
        return (
            question_from_item(question) if question else None,
            upvote_sk(question_id, participant_id) in found,
        )
