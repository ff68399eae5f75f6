"""Signaling: the in-meeting state machine behind the WebSocket API.

Each action reads the state it needs (strongly consistent), takes the meeting's next event
number, writes its whole effect in one conditional transaction, then fans the resulting event
out to the participants it concerns. A write that loses a race (another change to the same
participant landed first) is re-read and retried; a replayed request id changes nothing.

This module knows nothing of Lambda or API Gateway: handlers call it with the verified claims
of the connection and a parsed request, and tests can call it directly.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from townhall.auth.claims import JoinClaims, Role
from townhall.errors import Conflict, DomainError, Forbidden, Gone, InvalidInput, NotFound
from townhall.media.access import MediaAccess
from townhall.notifier import ConnectionNotifier
from townhall.signaling import permissions, protocol
from townhall.signaling.context import (
    Audience,
    Caller,
    DuplicateRequestError,
    everyone_admitted,
    moderators,
)
from townhall.signaling.polls import PollActions
from townhall.signaling.protocol import Request
from townhall.signaling.qa import QaActions
from townhall.signaling.whiteboard import WhiteboardActions
from townhall.store import attendance
from townhall.store.attendance import AttendanceStore
from townhall.store.connections import Connection, ConnectionStore
from townhall.store.meetings import (
    DuplicateRequest,
    Meeting,
    MeetingStore,
    Participant,
    ParticipantChange,
    Recipient,
    StaleWrite,
)
from townhall.store.polls import PollStore
from townhall.store.questions import QuestionStore
from townhall.store.whiteboard import WhiteboardStore

logger = logging.getLogger(__name__)

MAX_CHAT_CHARS = 4000
CHAT_HISTORY_ON_JOIN = 50
# A reply is one API Gateway message (at most 128 KiB); keep room for the reply envelope.
MAX_SNAPSHOT_BYTES = 120 * 1024
REACTIONS = frozenset({"👍", "👏", "❤️", "😂", "😮", "🎉", "🙌", "🤔"})
WRITE_ATTEMPTS = 4
# Tries of one collaboration transaction cancelled only by a concurrent one on the same item.
CONFLICT_ATTEMPTS = 6
# Bound on clean-up passes after a fan-out finds gone connections (each pass may find more).
MAX_CLEANUP_PASSES = 3

__all__ = ["Caller", "DuplicateRequestError", "SignalingService"]


class SignalingService(PollActions, QaActions, WhiteboardActions):
    def __init__(
        self,
        meetings: MeetingStore,
        connections: ConnectionStore,
        notifier: ConnectionNotifier,
        media: Callable[[], MediaAccess] | None = None,
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._meetings = meetings
        # Collaboration items live in the meetings table, each type under its own sort keys.
        self._polls = PollStore(meetings.table)
        self._questions = QuestionStore(meetings.table)
        self._whiteboard = WhiteboardStore(meetings.table)
        self._attendance = AttendanceStore(meetings.table)
        self._connections = connections
        self._notifier = notifier
        # Built on first use: only the signaling function holds the signing key and the
        # MediaNodes grant, and $connect/$disconnect never need media.
        self._media_factory = media
        self._media_access: MediaAccess | None = None
        self._clock = clock
        self._pause = pause

    # -- connection life cycle -------------------------------------------------------------

    def connect(self, claims: JoinClaims, connection_id: str, source_ip: str) -> None:
        """`$connect`: refuse connections to ended meetings or from removed participants."""
        meeting = self._meeting(claims.meeting_id)
        participant = self._meetings.get_participant(claims.meeting_id, claims.participant_id)
        if participant is not None and participant.status in ("removed", "denied"):
            raise Forbidden(f"you were {participant.status} from this meeting")
        if meeting.locked and not self._may_enter_locked(meeting, participant, claims.role):
            raise Forbidden("the meeting is locked")
        self._connections.put(
            Connection(
                connection_id=connection_id,
                meeting_id=claims.meeting_id,
                participant_id=claims.participant_id,
                connected_at=int(self._clock()),
                source_ip=source_ip,
            )
        )

    def disconnect(self, caller: Caller, reason: str) -> None:
        """`$disconnect`: the connection is closed; mark its participant offline."""
        self._connections.delete(caller.connection_id)
        self._mark_offline(caller.meeting_id, caller.participant_id, caller.connection_id, reason)

    # -- requests --------------------------------------------------------------------------

    def handle(self, caller: Caller, request: Request) -> dict[str, Any]:
        """Run one action; return the reply's data or raise a DomainError."""
        action = getattr(self, f"_do_{request.action}")
        result: dict[str, Any] = action(caller, request)
        return result

    def _do_ping(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data)
        return {"pong": int(self._clock() * 1000)}

    def _do_join(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data)
        for _ in range(WRITE_ATTEMPTS):
            found, me, seen = self._meetings.load(
                caller.meeting_id, caller.participant_id, request.request_id
            )
            meeting = self._running(found)
            if seen:
                raise DuplicateRequestError(f"request id {request.request_id} was already used")
            if me is None:
                # The HTTP join writes the participant; a valid token without one means the
                # participant was created by an older deployment. Recreate it from the claims.
                me = Participant(
                    meeting_id=caller.meeting_id,
                    participant_id=caller.participant_id,
                    name=caller.claims.name,
                    role=caller.claims.role,
                    status="joining",
                    user_id=caller.claims.user_id,
                )
                self._meetings.create_participant(me)
                continue
            if me.status in ("removed", "denied"):
                raise Forbidden(f"you were {me.status} from this meeting")
            role: Role = "host" if me.user_id and me.user_id == meeting.host_id else me.role
            was_admitted = me.status == "admitted"
            if meeting.locked and not self._may_enter_locked(meeting, me, role):
                raise Forbidden("the meeting is locked")
            admitted = was_admitted or permissions.is_moderator(role) or not meeting.waiting_room
            seq = self._next_seq(caller.meeting_id)
            now = int(self._clock())
            changes: dict[str, Any] = {
                "status": "admitted" if admitted else "waiting",
                "connection_id": caller.connection_id,
                "role": role,
                "joined_at": me.joined_at or now,
            }
            if admitted and not me.place:
                changes["place"] = seq
            if not permissions.may_publish(role, meeting.kind):
                changes.update(muted=True, camera=False, screen=False)
            puts = []
            if admitted and not (was_admitted and me.connected and me.session_at):
                # A new attendance session; a reconnect that replaces a live one continues it.
                changes["session_at"] = int(self._clock() * 1000)
                puts.append(
                    attendance.session_item(
                        caller.meeting_id, me.participant_id, changes["session_at"]
                    )
                )
            try:
                self._meetings.commit(
                    caller.meeting_id,
                    seq,
                    request=(caller.participant_id, request.request_id),
                    participants=[ParticipantChange(me, changes)],
                    puts=puts,
                )
            except StaleWrite:
                continue
            except DuplicateRequest as exc:
                raise DuplicateRequestError(f"request id {exc} was already used") from exc
            after = _apply(me, changes, seq)
            replaced = me.connection_id if me.connection_id != caller.connection_id else None
            if replaced:
                # One participant, one connection: the older socket would see every event twice.
                self._notifier.disconnect(replaced)
                self._connections.delete(replaced)
            if admitted:
                name = (
                    "participant.updated" if me.connected and was_admitted else "participant.joined"
                )
                self._fan_out(
                    meeting,
                    seq,
                    name,
                    {"participant": after.public()},
                    everyone_admitted,
                    exclude=caller.participant_id,
                )
                return self._snapshot(meeting.meeting_id, after)
            self._fan_out(
                meeting, seq, "waiting.joined", {"participant": after.public()}, moderators
            )
            return {"status": "waiting", "meeting": _meeting_public(meeting), "you": after.public()}
        raise Conflict("the meeting is busy; retry the request")

    def _do_media(self, caller: Caller, request: Request) -> dict[str, Any]:
        """The media node hosting the meeting and a token for it (see docs/media-control.md)."""
        protocol.only_fields(request.data)
        media, meeting, me = self._media_caller(caller, request)
        grant = media.grant(
            meeting.meeting_id,
            me.participant_id,
            may_publish=permissions.may_publish(me.role, meeting.kind),
            video_slots=meeting.video_slots,
        )
        self._commit(caller, request, 0)  # spends the request id: a replay is refused
        return grant

    def _do_media_publish(self, caller: Caller, request: Request) -> dict[str, Any]:
        """Relay the caller's publish offer to their meeting's node; reply with its answer."""
        protocol.only_fields(request.data, "sdp")
        offer = protocol.require_sdp(request.data)
        media, meeting, me = self._media_caller(caller, request)
        permissions.check_publish(me.role, meeting.kind, "audio or video")
        sdp = media.publish(
            meeting.meeting_id, me.participant_id, offer, video_slots=meeting.video_slots
        )
        self._commit(caller, request, 0)
        return {"sdp": sdp}

    def _do_media_subscribe(self, caller: Caller, request: Request) -> dict[str, Any]:
        """The node's offer for the caller's subscribe connection (answer with media_answer)."""
        protocol.only_fields(request.data)
        media, meeting, me = self._media_caller(caller, request)
        sdp = media.subscribe(
            meeting.meeting_id,
            me.participant_id,
            may_publish=permissions.may_publish(me.role, meeting.kind),
            video_slots=meeting.video_slots,
        )
        self._commit(caller, request, 0)
        return {"sdp": sdp}

    def _do_media_answer(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "sdp")
        answer = protocol.require_sdp(request.data)
        media, meeting, me = self._media_caller(caller, request)
        media.answer(
            meeting.meeting_id,
            me.participant_id,
            answer,
            may_publish=permissions.may_publish(me.role, meeting.kind),
            video_slots=meeting.video_slots,
        )
        self._commit(caller, request, 0)
        return {}

    def _media_caller(
        self, caller: Caller, request: Request
    ) -> tuple[MediaAccess, Meeting, Participant]:
        """The media actions' common checks. Their effect is on the node, not in the table, so
        each records its request id only after the node has answered: a request the node
        refused is safe to retry with the same id. `_acting` refuses an id already recorded;
        two copies racing both reach the node (which treats a repeat as a renegotiation) and
        the second is then refused as a replay."""
        media = self._media()
        if media is None:
            raise Gone("media is not available in this deployment")
        meeting, me = self._acting(caller, request)
        return media, meeting, me

    def _media(self) -> MediaAccess | None:
        if self._media_access is None and self._media_factory is not None:
            self._media_access = self._media_factory()
        return self._media_access

    def _do_leave(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data)
        self._mark_offline(caller.meeting_id, caller.participant_id, caller.connection_id, "left")
        media = self._media()
        if media is not None:
            media.leave(caller.meeting_id, caller.participant_id)
        return {}

    def _do_mute(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "muted", "participant_id")
        muted = protocol.require_bool(request.data, "muted")
        return self._set_flag(
            caller,
            request,
            "muted",
            muted,
            publishing=not muted,
            what="the microphone",
            others_only_to=True,
        )

    def _do_camera(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "on", "participant_id")
        on = protocol.require_bool(request.data, "on")
        return self._set_flag(
            caller, request, "camera", on, publishing=on, what="the camera", others_only_to=False
        )

    def _do_screenshare(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "on", "participant_id")
        on = protocol.require_bool(request.data, "on")
        return self._set_flag(
            caller,
            request,
            "screen",
            on,
            publishing=on,
            what="screen sharing",
            others_only_to=False,
        )

    def _do_hand(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "raised", "participant_id")
        raised = protocol.require_bool(request.data, "raised")
        value = int(self._clock() * 1000) if raised else 0
        return self._set_flag(
            caller,
            request,
            "hand_raised_at",
            value,
            publishing=False,
            what="a hand",
            others_only_to=0,
        )

    def _do_chat(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "text", "to")
        text = protocol.require_text(request.data, "text", MAX_CHAT_CHARS)
        to = protocol.optional_participant(request.data, "to")
        meeting, me = self._acting(caller, request)
        target = None
        if to is not None:
            if to == me.participant_id:
                raise InvalidInput("a private message needs another participant")
            target = self._other(caller, to, ("admitted",))
        seq = self._next_seq(caller.meeting_id)
        now_ms = int(self._clock() * 1000)
        message = {
            "message_id": seq,
            "from": me.participant_id,
            "from_name": me.name,
            "to": target.participant_id if target else None,
            "to_name": target.name if target else None,
            "private": target is not None,
            "text": text,
            "ts": now_ms,
        }
        item = {"pk": f"M#{caller.meeting_id}", "sk": f"C#{seq:012d}", **message}
        self._commit(caller, request, seq, puts=[item])
        if target is None:
            self._fan_out(meeting, seq, "chat.message", {"message": message}, everyone_admitted)
        else:
            pair = {me.participant_id, target.participant_id}
            self._fan_out(
                meeting,
                seq,
                "chat.message",
                {"message": message},
                lambda p: p.status == "admitted" and p.participant_id in pair,
            )
        return {"message_id": seq}

    def _do_react(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "emoji")
        emoji = protocol.require_text(request.data, "emoji", 8)
        if emoji not in REACTIONS:
            raise InvalidInput(f"emoji must be one of {' '.join(sorted(REACTIONS))}")
        meeting, me = self._acting(caller, request)
        seq = self._next_seq(caller.meeting_id)
        self._commit(caller, request, seq)
        self._fan_out(
            meeting,
            seq,
            "reaction",
            {"participant_id": me.participant_id, "name": me.name, "emoji": emoji},
            everyone_admitted,
        )
        return {}

    # -- moderation --------------------------------------------------------------------

    def _do_admit(self, caller: Caller, request: Request) -> dict[str, Any]:
        return self._decide_waiting(caller, request, admit=True)

    def _do_deny(self, caller: Caller, request: Request) -> dict[str, Any]:
        return self._decide_waiting(caller, request, admit=False)

    def _decide_waiting(self, caller: Caller, request: Request, admit: bool) -> dict[str, Any]:
        protocol.only_fields(request.data, "participant_id")
        target_id = protocol.require_participant(request.data)
        for _ in range(WRITE_ATTEMPTS):
            meeting, me = self._acting(caller, request)
            permissions.check_action(me.role, request.action)
            target = self._other(caller, target_id, ("waiting",), "not in the waiting room")
            seq = self._next_seq(caller.meeting_id)
            changes: dict[str, Any] = {"status": "admitted" if admit else "denied"}
            puts = []
            if admit:
                changes["place"] = seq
                if target.connection_id:
                    changes["session_at"] = int(self._clock() * 1000)
                    puts.append(
                        attendance.session_item(caller.meeting_id, target_id, changes["session_at"])
                    )
            else:
                changes["connection_id"] = None
            if not self._try_commit(
                caller, request, seq, [ParticipantChange(target, changes)], puts
            ):
                continue
            after = _apply(target, changes, seq)
            outcome = "admitted" if admit else "denied"
            self._fan_out(
                meeting,
                seq,
                "waiting.left",
                {"participant_id": target_id, "outcome": outcome, "by": me.participant_id},
                moderators,
            )
            if admit:
                self._fan_out(
                    meeting,
                    seq,
                    "participant.joined",
                    {"participant": after.public()},
                    everyone_admitted,
                    exclude=target_id,
                )
                if target.connection_id:
                    snapshot = self._snapshot(meeting.meeting_id, after)
                    self._send(meeting, seq, target.connection_id, "you.admitted", snapshot)
            elif target.connection_id:
                self._send(
                    meeting, seq, target.connection_id, "you.denied", {"by": me.participant_id}
                )
                self._close(target.connection_id)
            return {"participant": after.public()}
        raise Conflict("the meeting is busy; retry the request")

    def _do_mute_all(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data)
        for _ in range(WRITE_ATTEMPTS):
            meeting, me = self._acting(caller, request)
            permissions.check_action(me.role, "mute_all")
            targets = [
                p
                for p in self._meetings.participants(caller.meeting_id)
                if p.status == "admitted" and not p.muted and not permissions.is_moderator(p.role)
            ]
            seq = self._next_seq(caller.meeting_id)
            changes = [ParticipantChange(p, {"muted": True}) for p in targets]
            # A transaction holds 100 items: the request record, the meeting check and 98 more.
            # Beyond that the rest go in further transactions (each participant still atomic).
            first, rest = changes[:98], changes[98:]
            if not self._try_commit(caller, request, seq, first):
                continue
            for start in range(0, len(rest), 99):
                try:
                    self._meetings.commit(
                        caller.meeting_id, seq, participants=rest[start : start + 99]
                    )
                except StaleWrite:
                    logger.warning("mute_all: a batch changed concurrently; its members keep state")
            muted = [_apply(c.before, c.changes, seq).public() for c in changes]
            self._fan_out(
                meeting,
                seq,
                "meeting.muted_all",
                {"by": me.participant_id, "participants": muted},
                everyone_admitted,
            )
            return {"muted": [p["participant_id"] for p in muted]}
        raise Conflict("the meeting is busy; retry the request")

    def _do_remove(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "participant_id")
        target_id = protocol.require_participant(request.data)
        for _ in range(WRITE_ATTEMPTS):
            meeting, me = self._acting(caller, request)
            permissions.check_action(me.role, "remove")
            target = self._other(caller, target_id, ("admitted", "waiting", "joining"))
            permissions.check_acts_on(me.role, target.role, "remove")
            seq = self._next_seq(caller.meeting_id)
            changes = {
                "status": "removed",
                "connection_id": None,
                "screen": False,
                "left_at": int(self._clock()),
            }
            if not self._try_commit(
                caller,
                request,
                seq,
                [ParticipantChange(target, {**changes, "session_at": None})],
                self._session_end(target),
            ):
                continue
            data = {"participant_id": target_id, "by": me.participant_id}
            self._fan_out(
                meeting,
                seq,
                "participant.removed",
                data,
                lambda p: everyone_admitted(p) or p.participant_id == target_id,
                extra=[target.connection_id] if target.connection_id else [],
            )
            if target.connection_id:
                self._close(target.connection_id)
            media = self._media()
            if media is not None:
                media.leave(caller.meeting_id, target_id)  # their media stops too
            return {}
        raise Conflict("the meeting is busy; retry the request")

    def _do_lock(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "locked")
        locked = protocol.require_bool(request.data, "locked")
        meeting, me = self._acting(caller, request)
        permissions.check_action(me.role, "lock")
        seq = self._next_seq(caller.meeting_id)
        self._commit(caller, request, seq, meeting_changes={"locked": locked})
        self._fan_out(
            meeting,
            seq,
            "meeting.updated",
            {"locked": locked, "by": me.participant_id},
            everyone_admitted,
        )
        return {"locked": locked}

    def _do_end(self, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data)
        meeting, me = self._acting(caller, request)
        permissions.check_action(me.role, "end")
        seq = self._next_seq(caller.meeting_id)
        self._commit(caller, request, seq, meeting_changes={"ended_at": int(self._clock())})
        everyone = self._fan_out(
            meeting,
            seq,
            "meeting.ended",
            {"by": me.participant_id},
            lambda p: p.connection_id is not None,
        )
        for p in everyone:
            if p.connection_id and p.connection_id != caller.connection_id:
                self._close(p.connection_id)
        media = self._media()
        if media is not None:
            media.release(meeting.meeting_id)
        return {}

    def _do_promote(self, caller: Caller, request: Request) -> dict[str, Any]:
        return self._change_role(caller, request, promote=True)

    def _do_demote(self, caller: Caller, request: Request) -> dict[str, Any]:
        return self._change_role(caller, request, promote=False)

    def _change_role(self, caller: Caller, request: Request, promote: bool) -> dict[str, Any]:
        protocol.only_fields(request.data, "participant_id")
        target_id = protocol.require_participant(request.data)
        for _ in range(WRITE_ATTEMPTS):
            meeting, me = self._acting(caller, request)
            permissions.check_action(me.role, request.action)
            target = self._other(caller, target_id, ("admitted",))
            if promote and target.role not in ("attendee", "panelist"):
                raise Conflict(f"a {target.role} cannot be promoted to co-host")
            if not promote and target.role != "cohost":
                raise Conflict("only a co-host can be demoted")
            new_role: Role = (
                "cohost" if promote else ("panelist" if meeting.kind == "webinar" else "attendee")
            )
            seq = self._next_seq(caller.meeting_id)
            changes = {"role": new_role}
            if not self._try_commit(caller, request, seq, [ParticipantChange(target, changes)]):
                continue
            after = _apply(target, changes, seq)
            self._fan_out(
                meeting,
                seq,
                "participant.updated",
                {"participant": after.public(), "by": me.participant_id, "changed": ["role"]},
                everyone_admitted,
            )
            return {"participant": after.public()}
        raise Conflict("the meeting is busy; retry the request")

    # -- shared steps ------------------------------------------------------------------

    def _set_flag(
        self,
        caller: Caller,
        request: Request,
        field: str,
        value: Any,
        *,
        publishing: bool,
        what: str,
        others_only_to: Any,
    ) -> dict[str, Any]:
        """Change one flag of the caller, or of someone else when a moderator sets it to
        `others_only_to` (mute, camera off, hand down, stop sharing: never the reverse)."""
        target_id = protocol.optional_participant(request.data)
        for _ in range(WRITE_ATTEMPTS):
            meeting, me = self._acting(caller, request)
            if target_id is None or target_id == me.participant_id:
                target = me
                if publishing:
                    permissions.check_publish(me.role, meeting.kind, what)
            else:
                found = self._other(caller, target_id, ("admitted",))
                permissions.check_acts_on(me.role, found.role, f"change {what} of")
                if value != others_only_to:
                    raise Forbidden(f"you may only turn off {what} for someone else")
                target = found
            changes: dict[str, Any] = {field: value}
            others: list[ParticipantChange] = []
            if field == "screen" and value:
                sharing = [
                    p
                    for p in self._meetings.participants(caller.meeting_id)
                    if p.screen and p.participant_id != target.participant_id
                ]
                if sharing and not permissions.is_moderator(me.role):
                    raise Conflict(f"{sharing[0].name} is already sharing their screen")
                others = [ParticipantChange(p, {"screen": False}) for p in sharing]
            if getattr(target, field) == value and not others:
                self._commit(caller, request, 0)  # nothing to change, but the id is spent
                return {"participant": target.public()}
            seq = self._next_seq(caller.meeting_id)
            if not self._try_commit(
                caller, request, seq, [ParticipantChange(target, changes), *others]
            ):
                continue
            for other in others:
                stopped = _apply(other.before, other.changes, seq)
                self._fan_out(
                    meeting,
                    seq,
                    "participant.updated",
                    {
                        "participant": stopped.public(),
                        "by": me.participant_id,
                        "changed": ["screen"],
                    },
                    everyone_admitted,
                )
            after = _apply(target, changes, seq)
            self._fan_out(
                meeting,
                seq,
                "participant.updated",
                {
                    "participant": after.public(),
                    "by": me.participant_id,
                    "changed": [_public_name(field)],
                },
                everyone_admitted,
            )
            return {"participant": after.public()}
        raise Conflict("the meeting is busy; retry the request")

    def _mark_offline(
        self, meeting_id: str, participant_id: str, connection_id: str, reason: str
    ) -> None:
        for _ in range(WRITE_ATTEMPTS):
            meeting = self._meetings.get_meeting(meeting_id)
            p = self._meetings.get_participant(meeting_id, participant_id)
            if meeting is None or meeting.ended_at or p is None:
                return
            if p.connection_id != connection_id:
                return  # a newer connection took over, or already offline
            try:
                seq = self._meetings.next_seq(meeting_id)
            except StaleWrite:
                return
            changes = {"connection_id": None, "screen": False, "left_at": int(self._clock())}
            try:
                self._meetings.commit(
                    meeting_id,
                    seq,
                    participants=[ParticipantChange(p, {**changes, "session_at": None})],
                    puts=self._session_end(p),
                )
            except StaleWrite:
                continue
            after = _apply(p, changes, seq)
            data = {
                "participant_id": participant_id,
                "reason": reason,
                "participant": after.public(),
            }
            if p.status == "waiting":
                self._fan_out(
                    meeting,
                    seq,
                    "waiting.left",
                    {"participant_id": participant_id, "outcome": "left"},
                    moderators,
                )
            elif p.status == "admitted":
                self._fan_out(meeting, seq, "participant.left", data, everyone_admitted)
            return

    def _fan_out(
        self,
        meeting: Meeting,
        seq: int,
        name: str,
        data: dict[str, Any],
        audience: Audience,
        *,
        exclude: str | None = None,
        extra: list[str] | None = None,
    ) -> list[Recipient]:
        """Post the event to its audience; the roster it read, for callers that act on it too."""
        message = protocol.event(meeting.meeting_id, seq, name, data)
        participants = self._meetings.recipients(meeting.meeting_id)
        targets = {
            p.connection_id
            for p in participants
            if p.connection_id and audience(p) and p.participant_id != exclude
        }
        targets.update(extra or [])
        gone = self._notifier.post_many((c, message) for c in sorted(targets))
        logger.debug("fan-out", extra={"event": name, "targets": len(targets), "gone": len(gone)})
        if gone:
            self._clean_up_gone(meeting.meeting_id, gone, participants)
        return participants

    def _clean_up_gone(self, meeting_id: str, gone: list[str], known: list[Recipient]) -> None:
        """Connections that answered 410: their $disconnect never came (it is best-effort)."""
        by_connection = {p.connection_id: p for p in known if p.connection_id}
        for connection_id in gone[: len(known) + 1]:
            logger.info("connection %s is gone; cleaning up", connection_id)
            self._connections.delete(connection_id)
            p = by_connection.get(connection_id)
            if p is not None:
                self._mark_offline(meeting_id, p.participant_id, connection_id, "connection lost")

    def _send(
        self, meeting: Meeting, seq: int, connection_id: str, name: str, data: dict[str, Any]
    ) -> None:
        self._notifier.post_many(
            [(connection_id, protocol.event(meeting.meeting_id, seq, name, data))]
        )

    def _close(self, connection_id: str | None) -> None:
        if connection_id:
            self._notifier.disconnect(connection_id)
            self._connections.delete(connection_id)

    def _snapshot(self, meeting_id: str, me: Participant) -> dict[str, Any]:
        meeting = self._meeting(meeting_id)
        participants = self._meetings.participants(meeting_id)
        roster = sorted(
            (p for p in participants if p.status == "admitted" and p.connected),
            key=lambda p: (p.place, p.participant_id),
        )
        chat = [
            m
            for m in self._meetings.recent_chat(meeting_id, CHAT_HISTORY_ON_JOIN * 2)
            if not m.get("private") or me.participant_id in (m.get("from"), m.get("to"))
        ][-CHAT_HISTORY_ON_JOIN:]
        snapshot: dict[str, Any] = {
            "status": "admitted",
            "seq": meeting.seq,
            "meeting": _meeting_public(meeting),
            "you": me.public(),
            "participants": [p.public() for p in roster],
            "chat": [{k: v for k, v in m.items() if k not in ("pk", "sk")} for m in chat],
            "polls": self._polls_snapshot(meeting_id, me.participant_id),
            "questions": self._questions_snapshot(meeting_id),
            **self._whiteboard_snapshot(meeting_id),
        }
        if permissions.is_moderator(me.role):
            snapshot["waiting"] = [
                p.public() for p in participants if p.status == "waiting" and p.connected
            ]
        _fit(snapshot)
        return snapshot

    def _acting(self, caller: Caller, request: Request) -> tuple[Meeting, Participant]:
        """The running meeting and the admitted caller, read in one round trip. A replayed
        request id is refused here, before it costs an event number; the transaction's
        condition still catches a replay that races the original."""
        meeting, me, seen = self._meetings.load(
            caller.meeting_id, caller.participant_id, request.request_id
        )
        running = self._running(meeting)
        if seen:
            raise DuplicateRequestError(f"request id {request.request_id} was already used")
        return running, self._check_admitted(caller, me)

    def _meeting(self, meeting_id: str) -> Meeting:
        return self._running(self._meetings.get_meeting(meeting_id))

    def _running(self, meeting: Meeting | None) -> Meeting:
        if meeting is None:
            raise NotFound("meeting not found")
        if meeting.ended_at:
            raise Gone("the meeting has ended")
        return meeting

    def _other(
        self,
        caller: Caller,
        participant_id: str,
        statuses: tuple[str, ...],
        missing: str = "not in the meeting",
    ) -> Participant:
        """Another participant the caller acts on, in one of `statuses`, or NotFound."""
        found = self._meetings.get_participant(caller.meeting_id, participant_id)
        if found is None or found.status not in statuses:
            raise NotFound(f"that participant is {missing}")
        return found

    def _check_admitted(self, caller: Caller, me: Participant | None) -> Participant:
        if me is None or me.connection_id != caller.connection_id:
            raise Forbidden("send 'join' on this connection first")
        if me.status == "waiting":
            raise Forbidden("you are in the waiting room")
        if me.status != "admitted":
            raise Forbidden(f"you were {me.status} from this meeting")
        return me

    def _may_enter_locked(self, meeting: Meeting, p: Participant | None, role: Role) -> bool:
        if permissions.is_moderator(role):
            return True
        return p is not None and p.status == "admitted"

    def _next_seq(self, meeting_id: str) -> int:
        try:
            return self._meetings.next_seq(meeting_id)
        except StaleWrite as exc:
            raise Gone("the meeting has ended") from exc

    def _commit(self, caller: Caller, request: Request, seq: int, **writes: Any) -> None:
        try:
            self._meetings.commit(
                caller.meeting_id,
                seq,
                request=(caller.participant_id, request.request_id),
                **writes,
            )
        except DuplicateRequest as exc:
            raise DuplicateRequestError(f"request id {exc} was already used") from exc
        except StaleWrite as exc:
            raise Gone("the meeting has ended") from exc

    def _try_commit(
        self,
        caller: Caller,
        request: Request,
        seq: int,
        changes: list[ParticipantChange],
        puts: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Commit, or False when a participant changed under us (the caller re-reads)."""
        try:
            self._meetings.commit(
                caller.meeting_id,
                seq,
                request=(caller.participant_id, request.request_id),
                participants=changes,
                puts=puts or [],
            )
        except DuplicateRequest as exc:
            raise DuplicateRequestError(f"request id {exc} was already used") from exc
        except StaleWrite:
            return False
        return True

    def _commit_refusing(
        self,
        caller: Caller,
        request: Request,
        seq: int,
        extra: list[dict[str, Any]],
        refusals: dict[str, DomainError],
    ) -> None:
        """Commit ready-made items; a failed condition on one of `refusals`' sort keys is
        answered with that error (already voted, poll closed, cap reached). The request record
        is not kept when the transaction fails, so the same id may be retried.

        Many people voting on one poll, upvoting one question or drawing at once all write one
        item (the poll, the question, the COLLAB counter), and DynamoDB cancels a transaction
        that meets another in flight on an item (TransactionConflict, which botocore does not
        retry). No condition failed then, so the very same transaction is tried again after a
        short random pause: its items and seq stay valid."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._meetings.commit(
                    caller.meeting_id,
                    seq,
                    request=(caller.participant_id, request.request_id),
                    extra=extra,
                )
                return
            except DuplicateRequest as exc:
                raise DuplicateRequestError(f"request id {exc} was already used") from exc
            except StaleWrite as exc:
                for sk in exc.failed:
                    if sk in refusals:
                        raise refusals[sk] from exc
                if "META" in exc.failed:
                    raise Gone("the meeting has ended") from exc
                if exc.failed or attempt == CONFLICT_ATTEMPTS - 1:
                    raise Conflict("the meeting is busy; retry the request") from exc
                self._pause(random.uniform(0.005, 0.02) * (attempt + 1))

    def _session_end(self, p: Participant) -> list[dict[str, Any]]:
        """The item that closes the participant's attendance session, if one is open."""
        if not p.session_at:
            return []
        return [
            attendance.session_item(
                p.meeting_id, p.participant_id, p.session_at, int(self._clock() * 1000)
            )
        ]


def _fit(snapshot: dict[str, Any], limit: int = MAX_SNAPSHOT_BYTES) -> None:
    """Keep the snapshot within one API Gateway message (128 KiB, less the envelope). Each part
    has its own budget, but UTF-8 and a full meeting can add up: shed what a client can page
    back (oldest strokes) or live without (least-voted questions, oldest chat) until it fits."""
    size = _size(snapshot)
    if size <= limit:
        return
    strokes, questions, chat = snapshot["whiteboard"], snapshot["questions"], snapshot["chat"]
    for items, take in ((strokes, 0), (questions, -1), (chat, 0)):
        while size > limit and items:
            size -= _size(items.pop(take)) + 1
            if items is strokes:
                snapshot["whiteboard_more"] = True
    logger.warning("snapshot trimmed to fit one message", extra={"bytes": size})


def _size(value: dict[str, Any]) -> int:
    return len(protocol.dumps(value).encode())


def _apply(p: Participant, changes: dict[str, Any], seq: int) -> Participant:
    data = {**p.__dict__, **changes, "rev": seq}
    return Participant(**data)


def _public_name(field: str) -> str:
    return {"hand_raised_at": "hand", "screen": "screen"}.get(field, field)


def _meeting_public(meeting: Meeting) -> dict[str, Any]:
    return {
        "meeting_id": meeting.meeting_id,
        "title": meeting.title,
        "kind": meeting.kind,
        "locked": meeting.locked,
        "waiting_room": meeting.waiting_room,
        "video_slots": meeting.video_slots,
        "host_id": meeting.host_id,
    }
