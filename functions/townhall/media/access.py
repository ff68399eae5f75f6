"""What a participant gets when they ask to send or receive media: the node that hosts their
meeting and a short-lived media token for it.

The reservation per participant is the number of streams their subscribe connection carries
(the meeting's video slots, one screen-share slot and three audio slots): that is the load a
participant adds to a forwarding node, whatever the meeting's size.
"""

from __future__ import annotations

from typing import Any

from townhall.media.placement import MeetingPlacement
from townhall.media.tokens import MediaTokenService

SCREEN_SLOTS = 1
AUDIO_SLOTS = 3


def streams_per_participant(video_slots: int) -> int:
    return video_slots + SCREEN_SLOTS + AUDIO_SLOTS


class MediaAccess:
    def __init__(self, placement: MeetingPlacement, tokens: MediaTokenService) -> None:
        self._placement = placement
        self._tokens = tokens

    def grant(
        self, meeting_id: str, participant_id: str, *, may_publish: bool, video_slots: int
    ) -> dict[str, Any]:
        node = self._placement.place(meeting_id, streams_per_participant(video_slots))
        token, expires_at = self._tokens.issue(
            meeting_id, participant_id, node.node_id, may_publish=may_publish
        )
        # The node's control URL stays private: clients get its media address and a token.
        return {
            "node_id": node.node_id,
            "address": node.address,
            "token": token,
            "expires_at": expires_at,
            "may_publish": may_publish,
        }

    def release(self, meeting_id: str) -> None:
        self._placement.release(meeting_id)
