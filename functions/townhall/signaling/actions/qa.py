"""Q&A: admitted participants ask and upvote (once each, never their own question);
moderators answer or dismiss. Clients order questions by votes, then age."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from contracts.signaling_events import EventName
from townhall.errors import Forbidden, NotFound
from townhall.ids import new_id
from townhall.model.collaboration import Question
from townhall.model.session import SessionKey
from townhall.signaling import permissions, protocol
from townhall.signaling.checks import acting
from townhall.signaling.context import ActionContext, Caller, everyone_admitted
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq
from townhall.store.writes import (
    AlreadyUpvoted,
    AnswerQuestion,
    AskQuestion,
    DismissQuestion,
    PublishEvent,
    QuestionDismissed,
    UpvoteQuestion,
)

MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 1000
# The join snapshot carries the top questions up to this many bytes of JSON: a reply must fit
# in API Gateway's 128 KiB message with the roster and chat.
SNAPSHOT_BUDGET = 32 * 1024


def qa_ask(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "text")
    text = protocol.require_text(request.data, "text", MAX_QUESTION_CHARS)
    _, me = acting(ctx, caller, request)
    seq = next_seq(ctx, caller.session)
    question = Question(
        question_id=new_id("q_"),
        text=text,
        asked_by=me.participant_id,
        asked_by_name=me.name,
        votes=0,
        status="open",
        created_at=ctx.now_ms(),
        version=1,
    )
    public = question.public()
    told = announce(EventName.QA_ASKED, {"question": public}, everyone_admitted)
    commit(ctx, caller, request, seq, [AskQuestion(question), told])
    return {"question_id": question.question_id, "question": public}


def qa_upvote(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "question_id")
    question_id = protocol.require_item_id(request.data, "question_id")
    _, me = acting(ctx, caller, request)
    question, upvoted = ctx.questions.get_with_upvote(
        caller.session, question_id, me.participant_id
    )
    if question is None:
        raise NotFound("no such question in this meeting")
    if question.asked_by == me.participant_id:
        raise Forbidden("you cannot upvote your own question")
    if upvoted:
        raise AlreadyUpvoted()
    if question.status == "dismissed":
        raise QuestionDismissed()
    seq = next_seq(ctx, caller.session)
    upvote = UpvoteQuestion(question_id, me.participant_id, at=ctx.now_ms())
    counted = replace(question, votes=question.votes + 1, version=question.version + 1)
    commit(ctx, caller, request, seq, [upvote, _question_changed(counted)])
    return _reply(ctx, caller, counted)


def qa_answer(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "question_id", "text")
    question_id = protocol.require_item_id(request.data, "question_id")
    answer = protocol.optional_text(request.data, "text", MAX_ANSWER_CHARS)
    _, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "qa_answer")
    question = _find(ctx, caller, question_id)
    if question.status == "dismissed":
        raise QuestionDismissed()
    seq = next_seq(ctx, caller.session)
    answered = replace(question, status="answered", answer=answer, version=question.version + 1)
    commit(
        ctx,
        caller,
        request,
        seq,
        [AnswerQuestion(question_id, answer), _question_changed(answered)],
    )
    return _reply(ctx, caller, answered)


def qa_dismiss(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "question_id")
    question_id = protocol.require_item_id(request.data, "question_id")
    _, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "qa_dismiss")
    question = _find(ctx, caller, question_id)
    if question.status == "dismissed":
        raise QuestionDismissed("the question was already dismissed")
    seq = next_seq(ctx, caller.session)
    dismissed = replace(question, status="dismissed", version=question.version + 1)
    commit(ctx, caller, request, seq, [DismissQuestion(question_id), _question_changed(dismissed)])
    return _reply(ctx, caller, dismissed)


def questions_snapshot(ctx: ActionContext, session: SessionKey) -> list[dict[str, Any]]:
    """The top questions (by votes, then age) within the snapshot's budget."""
    result, used = [], 0
    for q in ctx.questions.questions(session):
        public = q.public()
        used += len(json.dumps(public, ensure_ascii=False)) + 1
        if used > SNAPSHOT_BUDGET:
            break
        result.append(public)
    return result


def _find(ctx: ActionContext, caller: Caller, question_id: str) -> Question:
    question = ctx.questions.get(caller.session, question_id)
    if question is None:
        raise NotFound("no such question in this meeting")
    return question


def _question_changed(state: Question) -> PublishEvent:
    """Tell everyone of a question's new state: as this write sees it in the record, and as
    it is when delivered (upvotes keep landing) in what clients get."""
    return announce(
        EventName.QA_UPDATED,
        {"question": state.public()},
        everyone_admitted,
        subject=f"question:{state.question_id}",
    )


def _reply(ctx: ActionContext, caller: Caller, expected: Question) -> dict[str, Any]:
    # Read back: concurrent upvotes may have landed; `version` orders the states.
    after = ctx.questions.get(caller.session, expected.question_id) or expected
    return {"question": after.public()}
