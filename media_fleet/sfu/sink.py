"""The Sink: how a slot's packets leave the room, and how its receiver's feedback comes back.

A slot (:class:`~media_fleet.sfu.forwarding.SlotForwarder`) turns the packets of whichever
source the slot map chose into one continuous RTP stream: its own sequence numbers and
timestamps, switches on keyframes. What carries that stream away is the slot's **sink**.
Today every sink is a subscriber's peer connection
(:class:`~media_fleet.sfu.peer_connection_sink.PeerConnectionSink`: header with the
session's extension ids, SRTP, ``sendto`` on the ICE pair). The room knows sinks only
through the three protocols below, so a sink that is not a peer connection takes a slot's
packets through exactly the same path (``MeetingRoom.subscribe_sinks``).

The contract
------------

- :meth:`Sink.send` runs on the hot path, synchronously, once per packet, inside the loop
  over a source's slots. It must not await, block or log per packet, and should allocate
  nothing beyond the packet it writes: its cost is paid once per slot per packet.
  Sequence numbers are the slot's own and run on without a gap across switches; a late or
  RTX-repaired packet from the publisher comes through with an older number.
- ``send`` returns True when the packet left, or is queued to leave at the next flush, and
  counts as forwarded. False means the sink cannot carry packets now (not connected yet, or
  any more): a video slot then starts again from a keyframe, so the receiver never starts in
  the middle of a group of pictures. A packet the sink's transport refuses on its own (SRTP's
  replay window, for a late duplicate) raises :class:`PacketRefused`, and the stream goes on.
- ``ssrc``, ``clock_rate`` and ``payload_types`` are read once, when the slot takes the
  sink. ``payload_types`` maps a codec (lower-case MIME type, e.g. ``video/vp8``) to the
  payload type the sink's receiver expects for it; a source whose codec is missing there
  is not forwarded to this sink at all (the room never transcodes).
- :meth:`Sink.attach` is called once, when a slot takes the sink, with the
  :class:`SinkFeedback` of that slot; :meth:`Sink.detach` when the slot lets go (the
  subscriber left, the room closed). The transport itself is its owner's to close.

Feedback
--------

What a sink's receiver says about the stream reaches the room through :class:`SinkFeedback`,
which names no source, publisher or room internals:

- **PLI/FIR** → :meth:`SinkFeedback.request_keyframe`: the room asks the source feeding the
  slot for a keyframe, at most one per source per 0.5 s however many sinks ask.
- **REMB** → :meth:`SinkFeedback.report_bandwidth`: the receiver's estimate; the room
  records it per slot and does not act on it yet.
- **NACK** is answered by the sink, from its own history, and never reaches the room: a NACK
  names the sink's own sequence numbers, and only the sink has the bytes it wrote under
  them (its header, its extension ids). :class:`~media_fleet.sfu.feedback.Retransmitter` does
  it for any sink that keeps a :class:`~media_fleet.rtp.history.PacketHistory`. Retransmission
  never goes back to the publisher.

Batches
-------

A sink whose ``batch`` is not None only queues in ``send``; the room calls the batch's
:meth:`SendBatch.flush` once per incoming packet, after it has offered that packet to every
slot of its source. So the N copies of one publisher packet can leave together, in one call.
Sinks share a batch (one per worker, or per socket); a batch with nothing queued must flush
for nothing, because the room flushes every batch a source's slots have ever used.

The sinks that come next
------------------------

**(a) A relay link to another node** (one meeting across nodes; plain SRTP over UDP, no ICE,
as Janus's remote publishers and mediasoup's PipeTransport do). The rule is one copy of
each wanted *track* per destination node, and the edge runs its own slot map for its own
viewers. So a relay sink takes the publisher's **original** SSRC, sequence numbers and
timestamps, not a slot's rewritten ones:

- a slot's stream is one subscriber's choice (their last-N, their speaker slot, their
  layers); the edge's viewers choose differently, and need every track's own stream to
  switch between with their own :class:`~media_fleet.rtp.slot.SlotRewriter`;
- a rewritten stream hides which publisher a packet is from and where it switched; the
  original one keeps the SSRC that names the track, and the keyframes the edge switches on;
- loss on the link is repaired by the publisher's numbers (the edge NACKs the origin's link
  history; it answers its own viewers' NACKs from its own history), and PLIs are
  aggregated at the edge (at most one per track per second) before they cross the link;
- one stream per track rather than per slot is what keeps the link at one copy per track.

It therefore hangs off a :class:`~media_fleet.sfu.forwarding.Source` directly, not off a
slot: a pass-through forwarder (a second fan-out set on the source, next to ``slots``, so
the slot loop stays one type) calls the same :meth:`Sink.send` with the packet's own payload
type mapped to the link's, its own sequence number and timestamp, and its audio level (the
edge detects speakers without decoding, as here). There is one ``Sink`` per relayed track,
with ``ssrc`` = the publisher's; all of a link's sinks share its SRTP session, its socket,
and a ``batch``. Its feedback is the same: PLIs from the edge come back through
``request_keyframe``, NACKs are answered from the link sink's own history, and the link's
REMB reports what the link can carry.

**(b) A program worker's subscription** (the broadcast tier: a process that decodes the
meeting and encodes one program, switch or grid, for LL-HLS). It subscribes like a
participant without a peer connection (``MeetingRoom.subscribe_sinks``): a switch program
takes one camera slot (the speaker slot) and the audio slots, a grid takes N camera slots.
It wants the slots' **rewritten** streams, because a slot is exactly what a decoder needs:
one continuous stream per tile whose switches land on keyframes, chosen by the same slot
map the participants see. Its sink writes plain RTP (no SRTP) to the worker over a local
socket or pipe, keeps no history, and takes the codecs it can decode (``payload_types``).
Its decoder needs keyframes (at start, after loss, when it cannot decode): it calls
``request_keyframe``, and the room sends the PLI upstream to whichever publisher feeds the
slot at that moment, rate-limited per source as for any subscriber.

**(c) A batched send path that a compiled extension takes over** (docs/performance.md:
SRTP protect and ``sendto`` are most of the per-slot cost). Its sinks' ``send`` only
queues: the slot's header and payload (or the header fields, for the extension to write),
with the sink's SRTP context. ``batch.flush()`` then protects every queued packet with its
own session's libsrtp context (the libsrtp inside pylibsrtp's wheel, the instance the DTLS
transports keyed) and sends them with one ``sendmmsg`` (one socket for many subscribers
needs a single-port mux; with aioice's socket per connection the extension still saves the
Python ``sendto`` per packet). ``send`` returns True once queued and decides False (not
connected) at queue time; history and sender statistics are kept at queue time, with the
bytes before SRTP; a packet SRTP refuses at flush time is dropped there, no longer per
packet. Handing a batch as a list would allocate one per incoming packet; the queue-and-flush
pair allocates nothing in the room.
"""

from collections.abc import Mapping
from typing import Protocol


class PacketRefused(Exception):
    """The sink's transport refused this one packet (e.g. SRTP's replay window, for a late
    duplicate); the packet is dropped, and the stream goes on."""


class SendBatch(Protocol):
    """Packets that several sinks queued, to leave together."""

    def flush(self) -> None:
        """Send whatever is queued (nothing, if nothing is). Called once per incoming packet,
        after its fan-out; must not await or raise."""
        ...


class SinkFeedback(Protocol):
    """What a sink's receiver asks of the room about the slot the sink is attached to."""

    async def request_keyframe(self) -> None:
        """The receiver needs a keyframe (PLI or FIR): ask the source feeding the slot."""
        ...

    def report_bandwidth(self, bitrate: int) -> None:
        """The receiver's estimate of what it can take, in bits per second (REMB)."""
        ...


class Sink(Protocol):
    """Where one slot's packets go: a subscriber's peer connection, a relay link's track, a
    program worker, a batched sender. See the module docstring for the contract."""

    @property
    def ssrc(self) -> int:
        """The SSRC the sink writes its packets with."""
        ...

    @property
    def clock_rate(self) -> int:
        """The RTP clock rate of the stream: 90000 for video, 48000 for Opus."""
        ...

    @property
    def payload_types(self) -> Mapping[str, int]:
        """Lower-case codec MIME type → the payload type the sink's receiver expects."""
        ...

    @property
    def batch(self) -> SendBatch | None:
        """The batch ``send`` queues into, or None if ``send`` sends at once."""
        ...

    def send(
        self,
        payload_type: int,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None,
    ) -> bool:
        """Send (or queue) one packet of the slot's stream; False if the sink cannot carry
        packets now. Raises :class:`PacketRefused` for a packet its transport refuses."""
        ...

    def attach(self, feedback: SinkFeedback) -> None:
        """A slot takes the sink: from now on, report the receiver's feedback here."""
        ...

    def detach(self) -> None:
        """The slot has let go of the sink: no more packets, no more feedback wanted."""
        ...
