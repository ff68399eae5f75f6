"""The SFU's per-meeting forwarding room (see docs/media-forwarding.md).

- :mod:`.room`: :class:`~.room.MeetingRoom`, the room's public API and its membership;
- :mod:`.negotiation`: the aiortc peer connections, negotiated once;
- :mod:`.membership`: publishers and their sources, subscribers and their slots;
- :mod:`.forwarding`: the hot path (per packet, per slot), synchronous;
- :mod:`.sink`: the :class:`~.sink.Sink` protocol a slot's packets leave through, and
  :mod:`.peer_connection_sink`, the sink of a subscriber's peer connection;
- :mod:`.feedback`: keyframe requests, NACK/RTX, REMB;
- :mod:`.slotmap`: which source feeds which slot; :mod:`.assignment`, its rules, pure;
- :mod:`.messages`: what the room tells subscribers;
- :mod:`.statistics`: the worker's forwarding figures and a room's packet rate (no aiortc);
- :mod:`.sdp`: track labels of a publish offer, and the announced-address rewrite;
- :mod:`.reports`: the slots' true sender reports.

``MeetingRoom`` is imported on first use, so that importing a light module of the package
(``media_fleet.sfu.statistics``) does not pull in aiortc.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .room import MeetingRoom

__all__ = ["MeetingRoom"]


def __getattr__(name: str) -> Any:
    if name == "MeetingRoom":
        from .room import MeetingRoom

        return MeetingRoom
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
