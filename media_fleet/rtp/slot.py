"""One outgoing slot: a continuous RTP stream whose source can be switched.

A subscriber's connection has a fixed set of send-only slots, each with its own SSRC and
payload type, negotiated once. The node decides which publisher's stream feeds a slot;
:class:`SlotRewriter` makes the switch invisible on the wire:

- the SSRC and payload type never change (the caller writes :attr:`SlotRewriter.ssrc` and
  :attr:`SlotRewriter.payload_type` into every packet);
- the sequence number runs on by exactly one across a switch;
- the timestamp advances by the wall time elapsed since the last sent packet, times the
  clock rate, so the receiver's jitter estimate and playout stay sane;
- for VP8, PictureID and TL0PICIDX run on by one from the last sent values (H.264 has no
  such fields: its payload passes unchanged).

A video switch is *pending* until the new source sends a keyframe: until then the old
source keeps feeding the slot, and :meth:`SlotRewriter.keyframe_request` says when to send
the new source a PLI (at once, then every ``keyframe_interval`` seconds). An audio switch
happens on the new source's first packet. Packets from any other source, and packets from
the current source older than its switch point, are dropped. Padding-only packets (empty
payload) of the current source are mapped like any other, so the sequence has no hole.

The marker bit, header extensions and everything past the VP8 descriptor pass through
unchanged; the caller copies them.

**Codecs.** Video is VP8 or H.264, per packet: :meth:`SlotRewriter.rewrite` takes the
codec of the packet's source, which decides how a keyframe is recognised
(:mod:`~media_fleet.rtp.vp8` or :mod:`~media_fleet.rtp.h264`) and whether the VP8
descriptor is rewritten. A slot may switch between a VP8 and an H.264 source, on the new
source's keyframe as always; the caller writes the slot's negotiated payload type of that
codec (:attr:`SlotRewriter.payload_type` is the slot's first, default one). PictureID and
TL0PICIDX continue from the last VP8 packet sent, across any H.264 stretch in between.
"""

import time
from collections.abc import Callable
from typing import Literal, NamedTuple

from .h264 import is_keyframe as h264_is_keyframe
from .seqnum import SEQ_MASK, TIMESTAMP_MASK, seq_newer
from .vp8 import PICTURE_ID_MASK_15, Vp8Descriptor, parse_descriptor, rewrite_descriptor

VideoCodec = Literal["vp8", "h264"]

KEYFRAME_REQUEST_INTERVAL = 0.3
"Seconds between repeated keyframe requests while a video switch is pending."


class RewrittenPacket(NamedTuple):
    """The outgoing header fields and payload of one forwarded packet."""

    sequence_number: int
    timestamp: int
    payload: bytes


class SlotRewriter:
    """Map packets from the selected source onto one fixed outgoing stream.

    :param ssrc: the slot's own SSRC (the subscriber-side sender's SSRC).
    :param payload_type: the payload type negotiated for the slot (its first codec).
    :param kind: ``"audio"`` (switches at once) or ``"video"`` (VP8 or H.264, switches on
        keyframes).
    :param clock_rate: RTP clock rate: 90000 for video, 48000 for Opus.
    :param clock: monotonic seconds; injectable for tests.
    :param initial_sequence: first outgoing sequence number; by default the first source's.
    :param initial_timestamp: first outgoing timestamp; by default the first source's.
    """

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        kind: Literal["audio", "video"],
        clock_rate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_sequence: int | None = None,
        initial_timestamp: int | None = None,
        keyframe_interval: float = KEYFRAME_REQUEST_INTERVAL,
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.kind = kind
        self.clock_rate = clock_rate
        self._clock = clock
        self._is_video = kind == "video"
        self._keyframe_interval = keyframe_interval
        self._initial_sequence = initial_sequence
        self._initial_timestamp = initial_timestamp

        # sources
        self._current: int | None = None
        self._pending: int | None = None
        self._last_request: float | None = None

        # mapping of the current source onto the slot
        self._switch_sequence = 0  # extended (unwrapped) incoming sequence numbers
        self._highest_sequence = 0
        self._sequence_offset = 0
        self._timestamp_offset = 0
        self._picture_id_offset = 0
        self._tl0picidx_offset = 0

        # the newest packet sent on the slot
        self._started = False
        self._last_sequence = 0
        self._last_timestamp = 0
        self._last_time = 0.0
        self._last_picture_id: int | None = None
        self._last_tl0picidx: int | None = None

    @property
    def source(self) -> int | None:
        """The SSRC currently feeding the slot."""
        return self._current

    @property
    def pending_source(self) -> int | None:
        """The SSRC the slot will switch to once it can (its keyframe, for video)."""
        return self._pending

    def select(self, source_ssrc: int | None) -> None:
        """Choose the source that should feed the slot; ``None`` empties the slot."""
        if source_ssrc is None:
            self._current = None
            self._pending = None
        elif source_ssrc == self._current:
            self._pending = None
        elif source_ssrc != self._pending:
            self._pending = source_ssrc
            self._last_request = None

    def keyframe_request(self) -> int | None:
        """Return the SSRC to send a PLI to now, or None.

        While a video switch is pending this answers the pending SSRC at once, then again
        every ``keyframe_interval`` seconds until its keyframe arrives.
        """
        if self._pending is None or not self._is_video:
            return None
        now = self._clock()
        if self._last_request is not None and now - self._last_request < self._keyframe_interval:
            return None
        self._last_request = now
        return self._pending

    def rewrite(
        self,
        source_ssrc: int,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        codec: VideoCodec = "vp8",
        descriptor: Vp8Descriptor | None = None,
    ) -> RewrittenPacket | None:
        """Map one incoming packet onto the slot, or return None to drop it.

        ``codec`` is the video codec of the packet's source (ignored for audio). For VP8,
        ``descriptor`` is the payload's parsed descriptor if the caller has it: a packet that
        feeds several slots is then parsed once, not once per slot.
        """
        if source_ssrc != self._current and source_ssrc != self._pending:
            return None
        keyframe = False
        if not self._is_video or not payload:  # an empty payload is RTP padding: map it
            descriptor = None
        elif codec == "h264":
            descriptor = None
            keyframe = source_ssrc != self._current and h264_is_keyframe(payload)
        else:
            if descriptor is None:
                try:
                    descriptor = parse_descriptor(payload)
                except ValueError:
                    return None
            keyframe = descriptor.keyframe

        if source_ssrc == self._current:
            # unwrap against the newest packet of this source, so "before the switch point"
            # stays true for late packets and false for every later one, however long it runs
            extended = self._highest_sequence + (
                ((sequence_number - self._highest_sequence + 0x8000) & SEQ_MASK) - 0x8000
            )
            if extended < self._switch_sequence:
                return None  # older than the switch point: it would collide
            if extended > self._highest_sequence:
                self._highest_sequence = extended
        elif not self._is_video:
            self._switch(sequence_number, timestamp, None, None)
        elif keyframe:
            if descriptor is not None:
                self._switch(
                    sequence_number, timestamp, descriptor.picture_id, descriptor.tl0picidx
                )
            else:
                self._switch(sequence_number, timestamp, None, None)
        else:
            return None  # the old source goes on until this keyframe

        out_sequence = (sequence_number + self._sequence_offset) & SEQ_MASK
        out_timestamp = (timestamp + self._timestamp_offset) & TIMESTAMP_MASK
        newest = not self._started or seq_newer(out_sequence, self._last_sequence)

        if descriptor is not None:
            picture_id = descriptor.picture_id
            tl0picidx = descriptor.tl0picidx
            if picture_id is not None:
                picture_id = (picture_id + self._picture_id_offset) & PICTURE_ID_MASK_15
            if tl0picidx is not None:
                tl0picidx = (tl0picidx + self._tl0picidx_offset) & 0xFF
            if self._picture_id_offset or self._tl0picidx_offset:
                payload = rewrite_descriptor(payload, descriptor, picture_id, tl0picidx)
            if newest:
                if picture_id is not None:
                    self._last_picture_id = picture_id
                if tl0picidx is not None:
                    self._last_tl0picidx = tl0picidx

        if newest:
            self._started = True
            self._last_sequence = out_sequence
            self._last_timestamp = out_timestamp
            self._last_time = self._clock()
        return RewrittenPacket(out_sequence, out_timestamp, payload)

    def _switch(
        self,
        sequence_number: int,
        timestamp: int,
        picture_id: int | None,
        tl0picidx: int | None,
    ) -> None:
        """Make the pending source current, with offsets that continue the slot."""
        assert self._pending is not None
        if self._started:
            elapsed = round((self._clock() - self._last_time) * self.clock_rate)
            out_sequence = self._last_sequence + 1
            out_timestamp = self._last_timestamp + max(1, elapsed)
        else:
            out_sequence = (
                sequence_number if self._initial_sequence is None else self._initial_sequence
            )
            out_timestamp = (
                timestamp if self._initial_timestamp is None else self._initial_timestamp
            )
        self._sequence_offset = (out_sequence - sequence_number) & SEQ_MASK
        self._timestamp_offset = (out_timestamp - timestamp) & TIMESTAMP_MASK
        self._picture_id_offset = 0
        if picture_id is not None and self._last_picture_id is not None:
            self._picture_id_offset = (self._last_picture_id + 1 - picture_id) & (
                PICTURE_ID_MASK_15
            )
        self._tl0picidx_offset = 0
        if tl0picidx is not None and self._last_tl0picidx is not None:
            self._tl0picidx_offset = (self._last_tl0picidx + 1 - tl0picidx) & 0xFF

        self._current = self._pending
        self._pending = None
        self._last_request = None
        self._switch_sequence = sequence_number
        self._highest_sequence = sequence_number
