"""Polls: a moderator asks, every admitted participant (webinar attendees too) votes once,
and everyone sees the counts live. Nobody's choices are shown to anyone else."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from contracts.signaling_events import EventName
from townhall.errors import InvalidInput, NotFound
from townhall.ids import new_id
from townhall.model.collaboration import Poll
from townhall.model.session import SessionKey
from townhall.signaling import permissions, protocol
from townhall.signaling.checks import acting
from townhall.signaling.context import ActionContext, Caller, everyone_admitted
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq
from townhall.store.writes import (
    AlreadyVoted,
    CastVote,
    ClosePoll,
    CreatePoll,
    PollClosed,
    PublishEvent,
)

MAX_QUESTION_CHARS = 300
MAX_OPTION_CHARS = 100
MIN_OPTIONS, MAX_OPTIONS = 2, 10


def poll_create(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "question", "options", "multiple")
    question = protocol.require_text(request.data, "question", MAX_QUESTION_CHARS)
    options = _options(request.data)
    multiple = protocol.optional_bool(request.data, "multiple", False)
    _, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "poll_create")
    seq = next_seq(ctx, caller.session)
    poll = Poll(
        poll_id=new_id("pl_"),
        question=question,
        options=tuple(options),
        multiple=multiple,
        status="open",
        counts=(0,) * len(options),
        voters=0,
        created_at=ctx.now_ms(),
        created_by=me.participant_id,
        version=1,
    )
    public = poll.public()
    told = announce(EventName.POLL_CREATED, {"poll": public}, everyone_admitted)
    commit(ctx, caller, request, seq, [CreatePoll(poll), told])
    return {"poll_id": poll.poll_id, "poll": public}


def poll_vote(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "poll_id", "choices")
    poll_id = protocol.require_item_id(request.data, "poll_id")
    _, me = acting(ctx, caller, request)
    poll, voted = ctx.polls.get_with_vote(caller.session, poll_id, me.participant_id)
    if poll is None:
        raise NotFound("no such poll in this meeting")
    choices = _choices(request.data, poll)
    if not poll.open:
        raise PollClosed()
    if voted is not None:
        raise AlreadyVoted()
    seq = next_seq(ctx, caller.session)
    vote = CastVote(poll_id, me.participant_id, tuple(choices), at=ctx.now_ms())
    counted = replace(
        poll,
        counts=tuple(c + (i in choices) for i, c in enumerate(poll.counts)),
        voters=poll.voters + 1,
        version=poll.version + 1,
    )
    told = _poll_changed(EventName.POLL_UPDATED, counted)
    commit(ctx, caller, request, seq, [vote, told])
    # Read back rather than compute: other votes may have landed in between, and the version
    # tells clients which state is newest (the event's state is read at delivery, likewise).
    after = ctx.polls.get(caller.session, poll_id) or counted
    return {"poll": {**after.public(), "my_choices": choices}}


def poll_close(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "poll_id")
    poll_id = protocol.require_item_id(request.data, "poll_id")
    _, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "poll_close")
    poll = ctx.polls.get(caller.session, poll_id)
    if poll is None:
        raise NotFound("no such poll in this meeting")
    if not poll.open:
        raise PollClosed("the poll is already closed")
    seq = next_seq(ctx, caller.session)
    closed = replace(poll, status="closed", version=poll.version + 1)
    told = _poll_changed(EventName.POLL_CLOSED, closed)
    commit(ctx, caller, request, seq, [ClosePoll(poll_id, at=ctx.now_ms()), told])
    after = ctx.polls.get(caller.session, poll_id) or closed
    return {"poll": after.public()}


def _poll_changed(name: EventName, state: Poll) -> PublishEvent:
    """Tell everyone of a poll's new state: as this write sees it in the record, and as it is
    when delivered (votes keep landing) in what clients get."""
    return announce(
        name, {"poll": state.public()}, everyone_admitted, subject=f"poll:{state.poll_id}"
    )


def polls_snapshot(ctx: ActionContext, session: SessionKey, participant_id: str) -> list[Any]:
    """Every poll of the session, oldest first, with the participant's own choices."""
    polls = ctx.polls.polls(session)
    mine = ctx.polls.choices_of(session, participant_id, [p.poll_id for p in polls])
    result = []
    for poll in polls:
        public = poll.public()
        if poll.poll_id in mine:
            public["my_choices"] = mine[poll.poll_id]
        result.append(public)
    return result


def _options(data: dict[str, Any]) -> list[str]:
    raw = protocol.require_list(data, "options", MIN_OPTIONS, MAX_OPTIONS)
    options = []
    for i, option in enumerate(raw):
        if not isinstance(option, str) or not 1 <= len(option.strip()) <= MAX_OPTION_CHARS:
            raise InvalidInput(f"data.options[{i}] must be a string of 1 to {MAX_OPTION_CHARS}")
        options.append(option.strip())
    if len(set(options)) != len(options):
        raise InvalidInput("data.options must all differ")
    return options


def _choices(data: dict[str, Any], poll: Poll) -> list[int]:
    raw = protocol.require_list(data, "choices", 1, len(poll.options))
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in raw):
        raise InvalidInput("data.choices must be option indexes (integers)")
    if any(not 0 <= c < len(poll.options) for c in raw):
        raise InvalidInput(f"data.choices must be from 0 to {len(poll.options) - 1}")
    if len(set(raw)) != len(raw):
        raise InvalidInput("data.choices must not repeat an option")
    if not poll.multiple and len(raw) != 1:
        raise InvalidInput("this poll takes exactly one choice")
    return sorted(raw)
