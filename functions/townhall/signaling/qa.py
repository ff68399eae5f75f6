"""Q&A: admitted participants ask and upvote (once each, never their own question);
moderators answer or dismiss. Clients order questions by votes, then age."""

from __future__ import annotations

import json
from typing import Any

from townhall.errors import Conflict, Forbidden, NotFound
from townhall.signaling import permissions, protocol
from townhall.signaling.context import ActionSteps, Caller, everyone_admitted
from townhall.signaling.ids import new_id
from townhall.signaling.protocol import Request
from townhall.store import questions as question_items

MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 1000
# The join snapshot carries the top questions up to this many bytes of JSON: a reply must fit
# in API Gateway's 128 KiB message with the roster and chat.
SNAPSHOT_BUDGET = 32 * 1024


def public_question(q: dict[str, Any]) -> dict[str, Any]:
    public = {
        "question_id": q["question_id"],
        "text": q["text"],
        "asked_by": q["asked_by"],
        "asked_by_name": q["asked_by_name"],
        "votes": q["votes"],
        "status": q["status"],
        "created_at": q["created_at"],
        "version": q["version"],
    }
    if q.get("answer"):
        public["answer"] = q["answer"]
    return public


class QaActions:
    def _do_qa_ask(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "text")
        text = protocol.require_text(request.data, "text", MAX_QUESTION_CHARS)
        meeting, me = self._acting(caller, request)
        seq = self._next_seq(caller.meeting_id)
        question = {
            "question_id": new_id("q_"),
            "text": text,
            "asked_by": me.participant_id,
            "asked_by_name": me.name,
            "votes": 0,
            "status": "open",
            "created_at": int(self._clock() * 1000),
            "version": 1,
        }
        self._commit_refusing(
            caller, request, seq, [self._questions.ask(caller.meeting_id, question)], {}
        )
        public = public_question(question)
        self._fan_out(meeting, seq, "qa.asked", {"question": public}, everyone_admitted)
        return {"question_id": question["question_id"], "question": public}

    def _do_qa_upvote(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "question_id")
        question_id = protocol.require_item_id(request.data, "question_id")
        meeting, me = self._acting(caller, request)
        found, upvoted = self._questions.get_with_upvote(
            caller.meeting_id, question_id, me.participant_id
        )
        if found is None:
            raise NotFound("no such question in this meeting")
        question = found
        if question["asked_by"] == me.participant_id:
            raise Forbidden("you cannot upvote your own question")
        if upvoted:
            raise Conflict("you already upvoted this question")
        if question["status"] == "dismissed":
            raise Conflict("the question was dismissed")
        seq = self._next_seq(caller.meeting_id)
        self._commit_refusing(
            caller,
            request,
            seq,
            self._questions.upvote(
                caller.meeting_id, question_id, me.participant_id, int(self._clock() * 1000)
            ),
            {
                question_items.upvote_sk(question_id, me.participant_id): Conflict(
                    "you already upvoted this question"
                ),
                question_items.question_sk(question_id): Conflict("the question was dismissed"),
            },
        )
        return _changed(self, caller, meeting, seq, question)

    def _do_qa_answer(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "question_id", "text")
        question_id = protocol.require_item_id(request.data, "question_id")
        answer = protocol.optional_text(request.data, "text", MAX_ANSWER_CHARS)
        meeting, me = self._acting(caller, request)
        permissions.check_action(me.role, "qa_answer")
        question = _find(self, caller, question_id)
        if question["status"] == "dismissed":
            raise Conflict("the question was dismissed")
        seq = self._next_seq(caller.meeting_id)
        self._commit_refusing(
            caller,
            request,
            seq,
            [self._questions.answer(caller.meeting_id, question_id, answer)],
            {question_items.question_sk(question_id): Conflict("the question was dismissed")},
        )
        return _changed(self, caller, meeting, seq, question)

    def _do_qa_dismiss(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "question_id")
        question_id = protocol.require_item_id(request.data, "question_id")
        meeting, me = self._acting(caller, request)
        permissions.check_action(me.role, "qa_dismiss")
        question = _find(self, caller, question_id)
        if question["status"] == "dismissed":
            raise Conflict("the question was already dismissed")
        seq = self._next_seq(caller.meeting_id)
        self._commit_refusing(
            caller,
            request,
            seq,
            [self._questions.dismiss(caller.meeting_id, question_id)],
            {question_items.question_sk(question_id): Conflict("the question was dismissed")},
        )
        return _changed(self, caller, meeting, seq, question)

    def _questions_snapshot(self: ActionSteps, meeting_id: str) -> list[dict[str, Any]]:
        result, used = [], 0
        for q in self._questions.questions(meeting_id):
            public = public_question(q)
            used += len(json.dumps(public, ensure_ascii=False)) + 1
            if used > SNAPSHOT_BUDGET:
                break
            result.append(public)
        return result


def _find(steps: ActionSteps, caller: Caller, question_id: str) -> dict[str, Any]:
    question = steps._questions.get(caller.meeting_id, question_id)
    if question is None:
        raise NotFound("no such question in this meeting")
    return question


def _changed(
    steps: ActionSteps, caller: Caller, meeting: Any, seq: int, before: dict[str, Any]
) -> dict[str, Any]:
    # Read back: concurrent upvotes may have landed; `version` orders the states.
    after = steps._questions.get(caller.meeting_id, before["question_id"]) or before
    public = public_question(after)
    steps._fan_out(meeting, seq, "qa.updated", {"question": public}, everyone_admitted)
    return {"question": public}
