"""RTP-level forwarding core: pure functions and small state machines, no aiortc objects.

Modules, one protocol concept each:

- :mod:`.seqnum`: 16-bit sequence and 32-bit timestamp arithmetic (wraparound).
- :mod:`.vp8`: the VP8 payload descriptor (RFC 7741), parsed and rewritten in place.
- :mod:`.slot`: :class:`~.slot.SlotRewriter`, one outgoing stream fed by a switchable source.
- :mod:`.history`: :class:`~.history.PacketHistory`, sent packets kept for NACK answers (RTX).
- :mod:`.sender_report`: :class:`~.sender_report.SenderStatistics`, counters and RTCP SR.
- :mod:`.speaker`: :class:`~.speaker.SpeakerDetector`, active speaker from RFC 6464 levels.
"""
