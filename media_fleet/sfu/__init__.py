"""The SFU's per-meeting forwarding room (see docs/sfu.md).

- :mod:`.room`: :class:`~.room.MeetingRoom`, publish and subscribe connections of one
  meeting, packet forwarding through slots, the slot map and the data channel.
- :mod:`.assignment`: which participant feeds which slot (last-N speakers), pure.
- :mod:`.sdp`: track labels of a publish offer, and the announced-address rewrite.
"""

from .room import MeetingRoom

__all__ = ["MeetingRoom"]
