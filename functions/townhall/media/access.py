"""What a participant gets when they ask to send or receive media: the node that hosts their
meeting and a short-lived media token for it.

The reservation per participant is the number of streams their subscribe connection carries
(the meeting's video slots, one screen-share slot and three audio slots): that is the load a
participant adds to a forwarding node, whatever the meeting's size.

When a participant is removed, or the meeting ends, the node is told to drop their connections
and refuse the media tokens issued until then (a revocation): a token lives 120 s, and must not
outlive the right to use it.

A request the node refuses leaves nothing behind (docs: "every request is safe to retry").
The meeting is placed before the node is called, since the token names the node and the
placement is what keeps concurrent requests of one meeting on one node; so what a request
took to reach its node (a stream reservation, a placement it wrote) is held pending until the
node answers: settled when the node accepted, given back when it refused or did not answer
(`MeetingPlacement.hold`, `settle`, `withdraw`). A placement another request relied on in the
meantime stays, so a refusal never undoes a concurrent success. A node that accepted a request
but whose answer was lost (a timeout) is treated as a refusal: the client retries, and the
session the node may have opened times out on its own.

A lost node. When a node's control API refuses the connection (its process is gone: the
port is closed) or accepts none within 2 s (the instance is gone), the node is declared lost
(`NodeDirectory.declare_lost`: its registry `ttl` ends now, unless it heartbeated since it was
read) and the meeting is placed again at once, for one more try of the same request, instead
of every participant waiting out the node's `ttl` (three heartbeats, 3 s). A slow answer (the
4 s read timeout) is no such evidence by itself: a node paused for a second answers late, and
keeps its meetings; only if the node also stopped heartbeating while we waited (its `ttl`
passed) is it lost. The caller learns the meeting moved (`NodeAnswer.moved_from`, also set when
this request's placement replaced a node whose heartbeat had stopped) and tells the room, so
everyone renegotiates on the new node at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from contracts import node_api
from contracts.media_nodes import MediaNode
from townhall.media import node_client
from townhall.media.nodes import NodeDirectory
from townhall.media.placement import Hold, MeetingPlacement
from townhall.media.tokens import MediaTokenService
from townhall.media.turn import TurnServers

log = logging.getLogger(__name__)

SCREEN_SLOTS = 1
AUDIO_SLOTS = 3


@dataclass(frozen=True)
class NodeAnswer:
    """What the node answered, and the node the meeting was on before this request found it
    lost and placed the meeting again (None when it stayed where it was)."""

    body: dict[str, Any]
    node_id: str
    moved_from: str | None = None


# What a page's report of stalled media found (`MediaAccess.check_node`).
NodeCheck = Literal["fine", "elsewhere", "lost"]


class _NodeLost(Exception):
    """The node of this request is lost: place the meeting again and retry. `told`: this
    request took it out of placement, so it is the one to tell the room."""

    def __init__(self, node_id: str, *, told: bool) -> None:
        super().__init__(node_id)
        self.node_id = node_id
        self.told = told


def streams_per_participant(video_slots: int) -> int:
    return video_slots + SCREEN_SLOTS + AUDIO_SLOTS


class MediaAccess:
    def __init__(
        self,
        placement: MeetingPlacement,
        nodes: NodeDirectory,
        tokens: MediaTokenService,
        turn: TurnServers | None = None,
    ) -> None:
        self._placement = placement
        self._nodes = nodes
        self._tokens = tokens
        self._turn = turn

    def grant(
        self, meeting_id: str, participant_id: str, *, may_publish: bool, video_slots: int
    ) -> dict[str, Any]:
        with self._holding(meeting_id, participant_id, may_publish, video_slots, False) as (
            hold,
            token,
            expires_at,
        ):
            pass  # nothing for the node to refuse: the client connects with the token
        node = hold.node
        # The node's control URL is for the control plane: clients get its media address, a
        # token, and the TURN servers (with credentials of their own) to reach it through when
        # UDP to it is blocked.
        return {
            "node_id": node.node_id,
            "address": node.address,
            "token": token,
            "expires_at": expires_at,
            "may_publish": may_publish,
            "ice_servers": self._turn.ice_servers(participant_id) if self._turn else [],
        }

    def publish(
        self, meeting_id: str, participant_id: str, offer_sdp: str, *, video_slots: int
    ) -> NodeAnswer:
        """Relay a publisher's offer to the meeting's node; its answer SDP."""

        def send(node: MediaNode, token: str) -> dict[str, Any]:
            request: node_api.PublishRequest = {"token": token, "sdp": offer_sdp}
            if relays := self._node_relays(participant_id):
                request["ice_servers"] = relays
            return node_client.call(node, node_api.PUBLISH_PATH, request)

        return self._on_node(meeting_id, participant_id, True, video_slots, False, send)

    def subscribe(
        self, meeting_id: str, participant_id: str, *, may_publish: bool, video_slots: int
    ) -> NodeAnswer:
        """The node's offer for this participant's subscribe connection. Its slots are the load
        a participant adds, so this is where the streams are reserved on the node."""

        def send(node: MediaNode, token: str) -> dict[str, Any]:
            request: node_api.SubscribeRequest = {"token": token}
            if relays := self._node_relays(participant_id):
                request["ice_servers"] = relays
            return node_client.call(node, node_api.SUBSCRIBE_PATH, request)

        return self._on_node(meeting_id, participant_id, may_publish, video_slots, True, send)

    def _node_relays(self, participant_id: str) -> list[node_api.IceServer]:
        return self._turn.for_media_node(participant_id) if self._turn else []

    def answer(
        self,
        meeting_id: str,
        participant_id: str,
        answer_sdp: str,
        *,
        may_publish: bool,
        video_slots: int,
    ) -> NodeAnswer:
        def send(node: MediaNode, token: str) -> dict[str, Any]:
            request: node_api.SubscribeAnswerRequest = {"token": token, "sdp": answer_sdp}
            return node_client.call(node, node_api.SUBSCRIBE_ANSWER_PATH, request)

        return self._on_node(meeting_id, participant_id, may_publish, video_slots, False, send)

    def check_node(self, meeting_id: str, node_id: str) -> NodeCheck:
        """A page stopped receiving media from `node_id` (web/media.js): what the room must do.

        `elsewhere`: the meeting is not placed on `node_id`, or the node is out of placement
        already (the room was told by whoever found it lost, or will be by the request that
        places it anew; or the id is not its node): the page alone must renegotiate. Otherwise
        the node is asked for its health: `lost` when this request takes it out (a refused
        connection), and the room must be told, once however many pages report; `fine` when it
        answered, or is only slow."""
        placed = self._placement.current(meeting_id)
        if placed is None or placed.node_id != node_id:
            return "elsewhere"
        node = self._nodes.get(node_id)
        if node is None:
            return "elsewhere"  # out of placement already: whoever took it out told the room
        try:
            node_client.probe(node)
        except node_client.MediaNodeUnavailable as exc:
            found = self._found_lost(node, exc)
            if found == "taken_out":
                log.warning("media node %s lost (a page's media stalled)", node_id)
                return "lost"
            if found == "out":
                return "elsewhere"
        return "fine"

    def leave(self, meeting_id: str, participant_id: str) -> None:
        """Best effort: the node also notices ICE going away on its own."""
        node = self._placed_node(meeting_id)
        if node is None:
            return
        token, _ = self._tokens.issue(meeting_id, participant_id, node.node_id, may_publish=False)
        request: node_api.LeaveRequest = {"token": token}
        try:
            node_client.call(node, node_api.LEAVE_PATH, request)
        except Exception:  # leaving must never fail the caller
            return

    def revoke_participant(self, meeting_id: str, participant_id: str) -> bool:
        """Tell the meeting's node to drop the participant's connections and refuse every
        media token of theirs issued until now (they were removed). Best effort, like the
        removal it follows: a node that does not answer is logged, never raised. True when the
        node took it."""
        return self._revoke(meeting_id, participant_id)

    def end_meeting(self, meeting_id: str) -> bool:
        """The meeting ended: its node drops every connection of it and refuses its media
        tokens issued until now (best effort, as `revoke_participant`), and the placement is
        released. True when the node took the revocation."""
        try:
            return self._revoke(meeting_id, None)
        finally:
            self.release(meeting_id)

    def _revoke(self, meeting_id: str, participant_id: str | None) -> bool:
        whom = f"participant {participant_id}" if participant_id else "every participant"
        try:
            node = self._placed_node(meeting_id)
            if node is None:
                return False  # no live node hosts the meeting: no session left to drop
            token = self._tokens.issue_revocation(
                meeting_id, node.node_id, participant_id=participant_id
            )
            request: node_api.RevokeRequest = {"token": token}
            node_client.call(node, node_api.REVOKE_PATH, request)
        except Exception:
            # The removal or the end is already committed: failing it now would only tell the
            # moderator something untrue. The tokens still expire within 120 s.
            log.warning("media of %s in meeting %s not revoked", whom, meeting_id, exc_info=True)
            return False
        return True

    def _placed_node(self, meeting_id: str) -> MediaNode | None:
        """The live node the meeting is placed on, active or draining."""
        placement = self._placement.current(meeting_id)
        return self._nodes.get(placement.node_id) if placement is not None else None

    def release(self, meeting_id: str) -> None:
        self._placement.release(meeting_id)

    def _on_node(
        self,
        meeting_id: str,
        participant_id: str,
        may_publish: bool,
        video_slots: int,
        reserve: bool,
        send: Callable[[MediaNode, str], dict[str, Any]],
    ) -> NodeAnswer:
        """`send` a request to the meeting's node with a media token for it, placing the
        meeting if it has no usable node (and reserving this participant's streams when
        `reserve`). A node found lost is taken out of placement and the meeting placed again
        at once, for one more try (see the module's docstring)."""
        lost: str | None = None
        for attempt in range(2):
            try:
                with self._holding(
                    meeting_id, participant_id, may_publish, video_slots, reserve
                ) as (hold, token, _):
                    node = hold.node
                    try:
                        body = send(node, token)
                    except (node_client.MediaNodeUnreachable, node_client.MediaNodeSilent) as exc:
                        found = self._found_lost(node, exc) if attempt == 0 else None
                        if found is None:
                            raise
                        raise _NodeLost(node.node_id, told=found == "taken_out") from None
                    return NodeAnswer(body, node.node_id, moved_from=lost or self._left_dead(hold))
            except _NodeLost as gone:
                # What this request held on it was given back on the way out of `_holding`.
                log.warning(
                    "media node %s lost; placing meeting %s again", gone.node_id, meeting_id
                )
                # Only the request that took the node out tells the room (once per loss).
                lost = gone.node_id if gone.told else None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _found_lost(
        self, node: MediaNode, failure: node_client.MediaNodeUnavailable
    ) -> Literal["taken_out", "out"] | None:
        """Whether a failed call shows the node is lost: `taken_out` when this call took it
        out of placement, `out` when it was out already, None when it is not lost. No
        connection is evidence (the node is declared lost here, by one conditional write that
        only the first caller wins); any other failure (above all a call left unanswered) is
        only if the node has also stopped heartbeating (its `ttl` passed while we waited): a
        node paused for a second answers late and keeps its meetings, one stalled for good is
        out of placement three heartbeats after it stopped."""
        if isinstance(failure, node_client.MediaNodeUnreachable) and self._nodes.declare_lost(node):
            return "taken_out"
        return "out" if self._nodes.get(node.node_id) is None else None

    def _left_dead(self, hold: Hold) -> str | None:
        """The node this request's placement replaced, if it was replaced because that node
        died (its heartbeat stopped): whoever is still on it must be told to move."""
        replaced = hold.replaced
        if replaced is None or replaced.node_id == hold.node.node_id:
            return None
        return replaced.node_id if self._nodes.get(replaced.node_id) is None else None

    @contextmanager
    def _holding(
        self,
        meeting_id: str,
        participant_id: str,
        may_publish: bool,
        video_slots: int,
        reserve: bool,
    ) -> Iterator[tuple[Hold, str, int]]:
        """What this request holds on the meeting's node (placing the meeting if it has none
        usable, and reserving this participant's streams when `reserve`), a media token for
        the node and the token's expiry,
        for the node call in the `with` block. What this request placed or reserved is given
        back if the block raises (the node refused, or did not answer), and kept otherwise."""
        hold = self._placement.hold(
            meeting_id, streams_per_participant(video_slots), reserve=reserve
        )
        try:
            token, expires_at = self._tokens.issue(
                meeting_id,
                participant_id,
                hold.node.node_id,
                may_publish=may_publish,
                video_slots=video_slots,
            )
            yield hold, token, expires_at
        except Exception:
            self._give_back(meeting_id, hold)
            raise
        try:
            self._placement.settle(hold)
        except Exception:
            # The node took the request: its answer stands. An unsettled placement is
            # settled by the next request of the meeting that relies on it.
            log.warning("media placement of meeting %s not settled", meeting_id, exc_info=True)

    def _give_back(self, meeting_id: str, hold: Hold) -> None:
        try:
            self._placement.withdraw(hold)
        except Exception:
            # The refusal is what the caller must hear; what was left is logged.
            log.warning(
                "media placement of meeting %s not given back after a refusal",
                meeting_id,
                exc_info=True,
            )
