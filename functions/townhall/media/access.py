"""What a participant gets when they ask to send or receive media: the node that hosts their
meeting and a short-lived media token for it.

The reservation per participant is the number of streams their subscribe connection carries
(the meeting's video slots, one screen-share slot and three audio slots): that is the load a
participant adds to a forwarding node, whatever the meeting's size.
"""

from __future__ import annotations

from typing import Any

from townhall.media import node_client
from townhall.media.nodes import MediaNode, NodeDirectory
from townhall.media.placement import MeetingPlacement
from townhall.media.tokens import MediaTokenService

SCREEN_SLOTS = 1
AUDIO_SLOTS = 3


def streams_per_participant(video_slots: int) -> int:
    return video_slots + SCREEN_SLOTS + AUDIO_SLOTS


class MediaAccess:
    def __init__(
        self, placement: MeetingPlacement, nodes: NodeDirectory, tokens: MediaTokenService
    ) -> None:
        self._placement = placement
        self._nodes = nodes
        self._tokens = tokens

    def grant(
        self, meeting_id: str, participant_id: str, *, may_publish: bool, video_slots: int
    ) -> dict[str, Any]:
        node, token, expires_at = self._node_and_token(
            meeting_id, participant_id, may_publish, video_slots, reserve=False
        )
        # The node's control URL is for the control plane: clients get its media address and
        # a token.
        return {
            "node_id": node.node_id,
            "address": node.address,
            "token": token,
            "expires_at": expires_at,
            "may_publish": may_publish,
        }

    def publish(
        self, meeting_id: str, participant_id: str, offer_sdp: str, *, video_slots: int
    ) -> str:
        """Relay a publisher's offer to the meeting's node; its answer SDP."""
        node, token, _ = self._node_and_token(
            meeting_id, participant_id, True, video_slots, reserve=False
        )
        answer = node_client.call(node, "/v1/publish", {"token": token, "sdp": offer_sdp})
        return str(answer.get("sdp", ""))

    def subscribe(
        self, meeting_id: str, participant_id: str, *, may_publish: bool, video_slots: int
    ) -> str:
        """The node's offer for this participant's subscribe connection. Its slots are the load
        a participant adds, so this is where the streams are reserved on the node."""
        node, token, _ = self._node_and_token(
            meeting_id, participant_id, may_publish, video_slots, reserve=True
        )
        offer = node_client.call(node, "/v1/subscribe", {"token": token})
        return str(offer.get("sdp", ""))

    def answer(
        self,
        meeting_id: str,
        participant_id: str,
        answer_sdp: str,
        *,
        may_publish: bool,
        video_slots: int,
    ) -> None:
        node, token, _ = self._node_and_token(
            meeting_id, participant_id, may_publish, video_slots, reserve=False
        )
        node_client.call(node, "/v1/subscribe/answer", {"token": token, "sdp": answer_sdp})

    def leave(self, meeting_id: str, participant_id: str) -> None:
        """Best effort: the node also notices ICE going away on its own."""
        placement = self._placement.current(meeting_id)
        node = self._nodes.get(placement.node_id) if placement is not None else None
        if node is None:
            return
        token, _ = self._tokens.issue(meeting_id, participant_id, node.node_id, may_publish=False)
        try:
            node_client.call(node, "/v1/leave", {"token": token})
        except Exception:  # leaving must never fail the caller
            return

    def _current_node(self, meeting_id: str) -> MediaNode | None:
        placement = self._placement.current(meeting_id)
        node = self._nodes.get(placement.node_id) if placement is not None else None
        return node if node is not None and node.state == "active" else None

    def release(self, meeting_id: str) -> None:
        self._placement.release(meeting_id)

    def _node_and_token(
        self,
        meeting_id: str,
        participant_id: str,
        may_publish: bool,
        video_slots: int,
        *,
        reserve: bool,
    ) -> tuple[MediaNode, str, int]:
        """The meeting's node (placing the meeting if it has none usable, and reserving this
        participant's streams when `reserve`) and a media token for it, with its expiry."""
        node = None if reserve else self._current_node(meeting_id)
        if node is None:
            node = self._placement.place(meeting_id, streams_per_participant(video_slots))
        token, expires_at = self._tokens.issue(
            meeting_id,
            participant_id,
            node.node_id,
            may_publish=may_publish,
            video_slots=video_slots,
        )
        return node, token, expires_at
