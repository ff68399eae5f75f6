"""Every private aiortc hook the forwarding node uses, in one place.

aiortc has no forwarding API (its maintainer says so in aiortc issues #449, #627 and #859):
it decodes every received track and encodes every sent one. The node instead takes each
packet after SRTP decryption, rewrites its header, and sends it out through a subscriber's
transport. Each function below touches one private attribute of aiortc 1.16.0
(``ASSUMED_AIORTC_VERSION``), says which, and why. ``tests/media/test_aiortc_seams.py`` pins
them all and fails loudly, naming the seam, when an upgrade moves one.

Two rules hold for every hook here:

- An exception that escapes a hook closes the whole peer connection, silently (aiortc's
  logger has a NullHandler). Our part of every hook catches and logs.
- The stock handlers still run after ours, so receiver reports, REMB and NACKs keep flowing.
"""

import asyncio
import logging
import queue
import threading
import types
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.codecs.base import Decoder
from aiortc.rtp import AnyRtcpPacket, RtpPacket

logger = logging.getLogger(__name__)

ASSUMED_AIORTC_VERSION = "1.16.0"
"The aiortc release whose private internals these seams were written against."

PacketHandler = Callable[[RtpPacket, int], Awaitable[None]]
"Our receive callback: a decrypted, parsed RTP packet and its arrival time in ms."
FeedbackHandler = Callable[[AnyRtcpPacket], Awaitable[None]]
"Our feedback callback: one RTCP packet a subscriber sent about a slot."


def aiortc_version_matches() -> bool:
    """True if the installed aiortc is the release these seams assume."""
    return str(aiortc.__version__) == ASSUMED_AIORTC_VERSION


# --- (a) receive: every decrypted packet of a publisher's track -------------------------


def install_receive_hook(receiver: RTCRtpReceiver, on_packet: PacketHandler) -> None:
    """Call ``on_packet`` with each RTP packet the receiver gets, then aiortc's own handler.

    Touches ``RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)``, which
    ``RTCDtlsTransport`` awaits for every routed packet: decrypted, parsed, with header
    extensions decoded (``packet.extensions.audio_level`` ...), and RTX still wrapped (RTX
    packets come through with the RTX payload type and SSRC; skip or unwrap them).

    Install it inside ``pc.on("track")``: that event fires during ``setRemoteDescription``,
    before the receiver starts. The original handler is awaited afterwards so that the
    receiver keeps its statistics and sends receiver reports, REMB and NACKs upstream.
    """
    original = receiver._handle_rtp_packet

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        try:
            await on_packet(packet, arrival_time_ms)
        except Exception:
            logger.exception("receive hook failed on %r; packet dropped", packet)
        await original(packet, arrival_time_ms=arrival_time_ms)

    setattr(receiver, "_handle_rtp_packet", handle_rtp_packet)  # noqa: B010


# --- (b) no decoding, no encoding -------------------------------------------------------


class _DiscardingQueue(queue.Queue[Any]):
    """A decoder input queue that drops encoded frames and passes only the stop sentinel."""

    def __init__(self) -> None:
        super().__init__()
        self.discarded = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
        else:
            self.discarded += 1


@dataclass
class DiscardedFrames:
    """How many encoded frames a receiver assembled and threw away undecoded."""

    _queue: _DiscardingQueue

    @property
    def count(self) -> int:
        return self._queue.discarded


def discard_encoded_frames(receiver: RTCRtpReceiver) -> DiscardedFrames:
    """Make the receiver throw away every frame it assembles, so nothing is ever decoded.

    Touches ``RTCRtpReceiver.__decoder_queue`` (name-mangled
    ``_RTCRtpReceiver__decoder_queue``). ``receive()`` always starts a decoder thread that
    reads this queue; with the replacement the thread idles in ``get()`` until the receiver
    stops, ``get_decoder`` is never called, and the remote track's queue (unbounded, read by
    nobody on the node) never gets a frame. Call it inside ``pc.on("track")``, before
    ``receive()`` hands the queue to the thread.
    """
    if not hasattr(receiver, "_RTCRtpReceiver__decoder_queue"):
        raise AttributeError("RTCRtpReceiver has no __decoder_queue: aiortc moved a seam")
    discarding = _DiscardingQueue()
    setattr(receiver, "_RTCRtpReceiver__decoder_queue", discarding)  # noqa: B010
    return DiscardedFrames(discarding)


class NullDecoder(Decoder):
    """A decoder that decodes nothing."""

    def decode(self, encoded_frame: Any) -> list[Any]:
        return []


def _refuse_encoder(codec: Any) -> NoReturn:
    raise RuntimeError(f"the forwarding node must not encode ({codec.mimeType})")


@dataclass
class CodecWatch:
    """Which threads created a decoder, and which tasks created an encoder."""

    decoder_threads: list[threading.Thread] = field(default_factory=list)
    encoder_tasks: list[asyncio.Task[Any] | None] = field(default_factory=list)

    def decoded_for(self, receiver: RTCRtpReceiver) -> bool:
        """True if ``receiver``'s decoder thread created a decoder (check before stop)."""
        thread = getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)
        return thread is not None and thread in self.decoder_threads

    def encoded_for(self, sender: RTCRtpSender) -> bool:
        """True if ``sender``'s RTP task created an encoder."""
        task = getattr(sender, "_RTCRtpSender__rtp_task", None)
        return task is not None and task in self.encoder_tasks


class _InertThread:
    """Stands in for the decoder thread that ``RTCRtpReceiver.receive()`` would start."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass

    def is_alive(self) -> bool:
        return False


@contextmanager
def no_decoder_threads() -> Iterator[None]:
    """Stop every ``RTCRtpReceiver.receive()`` in this process from starting a decoder thread.

    For the node process only, where every receiver forwards and none may decode. Touches the
    module global ``aiortc.rtcrtpreceiver.threading``: ``receive()`` builds its decoder thread
    with ``threading.Thread(target=decoder_worker, ...)``; with this in place it gets an inert
    stand-in whose ``start()`` and ``join()`` do nothing, so no thread ever exists (frames the
    receiver assembles go to the queue that ``discard_encoded_frames`` replaced). Everything
    else in ``threading`` (the receiver's ``Event``) is the real module's. ``receive()`` runs
    once DTLS is up, well after negotiation, so the patch must be in force for as long as
    connections are made: the node's worker holds it for its whole life.
    """
    original = aiortc.rtcrtpreceiver.threading
    shim = types.ModuleType("threading_without_decoders")
    shim.__dict__.update({k: v for k, v in vars(threading).items() if not k.startswith("__")})
    shim.Thread = _InertThread  # type: ignore[attr-defined]
    aiortc.rtcrtpreceiver.threading = shim
    try:
        yield
    finally:
        aiortc.rtcrtpreceiver.threading = original


def decoder_threads_alive() -> int:
    """Threads aiortc named as decoders (``"audio-decoder"``, ``"video-decoder"``)."""
    return sum(1 for thread in threading.enumerate() if thread.name.endswith("-decoder"))


@contextmanager
def watch_codecs(*, forbid: bool = False) -> Iterator[CodecWatch]:
    """Record (or, with ``forbid``, prevent) every decoder and encoder aiortc creates.

    Touches the module globals ``aiortc.rtcrtpreceiver.get_decoder`` (called by the decoder
    thread on its first frame) and ``aiortc.rtcrtpsender.get_encoder`` (called by a sender on
    its first frame). Without ``forbid`` the originals still run, so tests with encoding
    publishers and decoding subscribers in the same process can attribute codecs to the
    node's receivers and senders with :meth:`CodecWatch.decoded_for` and
    :meth:`CodecWatch.encoded_for`. With ``forbid`` (the node process) every decoder is a
    :class:`NullDecoder` and creating an encoder raises, which stops that sender's RTP loop
    with a logged warning instead of burning CPU.
    """
    original_decoder = aiortc.rtcrtpreceiver.get_decoder
    original_encoder = aiortc.rtcrtpsender.get_encoder
    watch = CodecWatch()

    def get_decoder(codec: Any) -> Decoder:
        watch.decoder_threads.append(threading.current_thread())
        return NullDecoder() if forbid else original_decoder(codec)

    def get_encoder(codec: Any) -> Any:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        watch.encoder_tasks.append(task)
        if forbid:
            _refuse_encoder(codec)
        return original_encoder(codec)

    aiortc.rtcrtpreceiver.get_decoder = get_decoder
    aiortc.rtcrtpsender.get_encoder = get_encoder
    try:
        yield watch
    finally:
        aiortc.rtcrtpreceiver.get_decoder = original_decoder
        aiortc.rtcrtpsender.get_encoder = original_encoder


# --- (c) send: rewritten packets out of a subscriber's slot -----------------------------


@dataclass(frozen=True)
class SlotParameters:
    """What a slot needs from its negotiated send-only transceiver."""

    mid: str | None
    mime_type: str
    clock_rate: int
    payload_type: int
    ssrc: int
    rtx_payload_type: int | None
    rtx_ssrc: int


def slot_parameters(transceiver: RTCRtpTransceiver) -> SlotParameters:
    """Read the slot's SSRCs and negotiated payload types from its transceiver.

    Touches ``RTCRtpTransceiver._codecs`` (the negotiated codecs, first = the one the sender
    uses, as ``RTCPeerConnection.__localRtp`` passes them to ``RTCRtpSender.send``) and
    ``RTCRtpSender._ssrc`` / ``_rtx_ssrc``. Valid once negotiation is complete.
    """
    codecs = transceiver._codecs
    if not codecs:
        raise ValueError("the transceiver has no negotiated codecs yet")
    codec = codecs[0]
    if codec.payloadType is None:
        raise ValueError("the transceiver's codec has no payload type yet")
    rtx_payload_type = next(
        (
            c.payloadType
            for c in codecs
            if is_rtx(c) and c.parameters.get("apt") == codec.payloadType
        ),
        None,
    )
    sender = transceiver.sender
    return SlotParameters(
        mid=transceiver.mid,
        mime_type=codec.mimeType,
        clock_rate=codec.clockRate,
        payload_type=codec.payloadType,
        ssrc=sender._ssrc,
        rtx_payload_type=rtx_payload_type,
        rtx_ssrc=sender._rtx_ssrc,
    )


def serialize_for(sender: RTCRtpSender, packet: RtpPacket) -> bytes:
    """Serialize ``packet`` with the header-extension ids of the sender's own transport.

    Touches ``RTCDtlsTransport._rtp_header_extensions_map``. Extension ids are negotiated per
    session, so a packet parsed on the publisher's transport must be written with the
    subscriber's map; an extension the subscriber did not negotiate is left out.
    """
    return packet.serialize(sender.transport._rtp_header_extensions_map)


async def send_packet(sender: RTCRtpSender, data: bytes) -> bool:
    """Send serialized RTP or RTCP through the sender's transport; False if not connected.

    Touches ``RTCDtlsTransport._send_rtp(data)``, which SRTP-protects (RTP or RTCP, by the
    packet type byte) and sends, and raises ConnectionError unless the transport is
    connected. Checking the state first keeps the common "not yet / no longer connected"
    case free of exceptions.
    """
    transport = sender.transport
    if transport.state != "connected":
        return False
    try:
        await transport._send_rtp(data)
    except ConnectionError:
        return False
    return True


# --- (d) keyframe requests --------------------------------------------------------------


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send a PLI for ``media_ssrc`` to the publisher behind ``receiver``.

    Touches ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``. It sends nothing until the
    receiver's RTCP SSRC is set during negotiation; aiortc does not negotiate FIR.
    """
    try:
        await receiver._send_rtcp_pli(media_ssrc)
    except Exception:
        logger.exception("PLI to SSRC %d failed", media_ssrc)


# --- (e) subscriber feedback and placeholder tracks -------------------------------------


def install_feedback_hook(sender: RTCRtpSender, on_rtcp: FeedbackHandler) -> None:
    """Call ``on_rtcp`` with each RTCP packet routed to the sender, then aiortc's handler.

    Touches ``RTCRtpSender._handle_rtcp_packet(packet)``. The transport routes to a sender
    the receiver reports about its SSRC, NACKs and PLIs/FIRs with it as media SSRC, and REMBs
    naming it: what the node needs to answer NACKs from its own history, forward keyframe
    requests to the slot's source, and read the subscriber's bandwidth. The stock handler
    still runs (it keeps the sender's RTT estimate); its NACK and PLI handling does nothing
    useful for a forwarding slot and does no harm.
    """
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        try:
            await on_rtcp(packet)
        except Exception:
            logger.exception("feedback hook failed on %r", packet)
        await original(packet)

    setattr(sender, "_handle_rtcp_packet", handle_rtcp_packet)  # noqa: B010


class PlaceholderTrack(MediaStreamTrack):
    """A track for a send-only slot transceiver whose ``recv()`` never returns.

    The slot's packets are sent by the node, not by the stock sender loop. Without a track
    that loop polls every 20 ms; with this one it waits in ``recv()`` until the sender stops
    (which cancels it), and never reaches ``get_encoder``.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> NoReturn:
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")  # pragma: no cover
