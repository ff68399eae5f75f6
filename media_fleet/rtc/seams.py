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
import functools
import logging
import queue
import socket
import struct
import threading
import types
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import aiortc.rtp
import pylibsrtp
import pylibsrtp._binding
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.codecs.base import Decoder
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import State as _DtlsState
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

logger = logging.getLogger(__name__)

_DTLS_CONNECTED = _DtlsState.CONNECTED

SrtpError = pylibsrtp.Error
_srtp_ffi = pylibsrtp._binding.ffi
_srtp_protect = pylibsrtp._binding.lib.srtp_protect
_srtp_assert = pylibsrtp._srtp_assert
"What SRTP protect raises for a packet it refuses (see :meth:`SlotTransmitter.send`)."

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


REMB_MIN_INTERVAL_MS = 100
"At most one REMB per estimate per this many ms (aiortc's estimator answers every packet while overusing)."


class ReceiveBandwidthEstimate:
    """One receive-side bandwidth estimate for all the video one connection brings in.

    With BUNDLE, every stream of a publisher shares one transport, and Chrome caps that whole
    transport's send rate with the latest REMB, whatever SSRCs it lists. aiortc keeps an
    estimator per receiver, each bounded near 1.5x its own stream's rate, so a publisher of a
    camera and its scaled-down copy gets REMBs that alternate between the two: each time the
    small stream's REMB is the cap, the camera is squeezed, its rate falls, and so does its
    own estimate (on loopback browsers settled at 30-45 kbps). One estimator over every
    video packet of the connection, as libwebrtc's abs-send-time estimator does, gives one
    REMB for the total that names every SSRC. Share one instance between a connection's
    receivers (:func:`install_forwarding_receive_hook`'s ``bandwidth``).
    """

    def __init__(self, estimator: RemoteBitrateEstimator | None = None) -> None:
        self.estimator = estimator if estimator is not None else RemoteBitrateEstimator()
        self.last_remb_ms = -REMB_MIN_INTERVAL_MS  # arrival time of the last REMB sent


def install_forwarding_receive_hook(
    receiver: RTCRtpReceiver,
    on_packet: PacketHandler,
    bandwidth: ReceiveBandwidthEstimate | None = None,
) -> None:
    """Call ``on_packet`` with each RTP packet, then only what the publisher needs of aiortc.

    Like :func:`install_receive_hook`, but aiortc's own handler no longer runs. Of what it
    does per packet, a forwarding receiver needs what goes back to the publisher, and this
    keeps exactly that, through the receiver's own objects: the remote bitrate estimator
    (REMB), the per-SSRC statistics (its receiver reports, and ``getStats``), RTX
    unwrapping for the NACK generator, and the NACK generator (NACKs). It leaves out the
    depayloading (a copy of every VP8 payload), the jitter buffer (frame assembly, and the
    PLIs it sends on a gap, which set off keyframe storms when the node falls behind), the
    decoder queue and ``getSynchronizationSources`` bookkeeping: the node never decodes.
    REMBs go out at most every :data:`REMB_MIN_INTERVAL_MS`: while its detector says
    "overusing", aiortc's estimator answers every packet with one, and a node that falls
    behind delays packets, so it would send a REMB per packet just when it can least afford it.
    With ``bandwidth``, the REMB comes from that shared estimate instead of the receiver's own
    (see :class:`ReceiveBandwidthEstimate`); audio receivers, which aiortc gives no estimator,
    never feed it.

    Touches, besides ``RTCRtpReceiver._handle_rtp_packet`` (as :func:`install_receive_hook`),
    the name-mangled ``RTCRtpReceiver.__codecs``, ``__remote_streams``, ``__rtx_ssrc``,
    ``__nack_generator``, ``__remote_bitrate_estimator`` and ``__rtcp_ssrc``, and the
    methods ``_send_rtcp(packet)`` and ``_send_rtcp_nack(media_ssrc, lost)``. The dicts are
    made in ``__init__`` and filled in place by ``receive()``, so they are bound here once.
    Install it inside ``pc.on("track")``, as :func:`install_receive_hook`.
    """
    private: Any = receiver  # the name-mangled attributes
    codecs: dict[int, Any] = private._RTCRtpReceiver__codecs
    streams: dict[int, StreamStatistics] = private._RTCRtpReceiver__remote_streams
    rtx_ssrcs: dict[int, int] = private._RTCRtpReceiver__rtx_ssrc
    nack_generator: NackGenerator | None = private._RTCRtpReceiver__nack_generator
    own: RemoteBitrateEstimator | None = private._RTCRtpReceiver__remote_bitrate_estimator
    estimate: ReceiveBandwidthEstimate | None = None
    if own is not None:  # video: alone, the receiver's own estimator, as aiortc has it
        estimate = bandwidth if bandwidth is not None else ReceiveBandwidthEstimate(own)

    async def owed_to_publisher(packet: RtpPacket, arrival_time_ms: int) -> None:
        if estimate is not None and packet.extensions.abs_send_time is not None:
            remb = estimate.estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            rtcp_ssrc = private._RTCRtpReceiver__rtcp_ssrc
            if (
                remb is not None
                and rtcp_ssrc is not None
                and arrival_time_ms - estimate.last_remb_ms >= REMB_MIN_INTERVAL_MS
            ):
                estimate.last_remb_ms = arrival_time_ms
                await receiver._send_rtcp(
                    RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                    )
                )
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        statistics = streams.get(packet.ssrc)
        if statistics is None:
            statistics = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        statistics.add(packet)
        if nack_generator is None:
            return
        if is_rtx(codec):
            original_ssrc = rtx_ssrcs.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        if nack_generator.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(nack_generator.missing))

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        try:
            await on_packet(packet, arrival_time_ms)
        except Exception:
            logger.exception("receive hook failed on %r; packet dropped", packet)
        if not receiver._enabled:
            return
        try:
            await owed_to_publisher(packet, arrival_time_ms)
        except Exception:
            logger.exception("receiver bookkeeping failed on %r", packet)

    setattr(receiver, "_handle_rtp_packet", handle_rtp_packet)  # noqa: B010


RECEIVE_BUFFER_BYTES = 1 << 20
"SO_RCVBUF asked for on a publisher's sockets: a few keyframes' worth, not 208 KiB."


def enlarge_receive_buffers(receiver: RTCRtpReceiver, size: int = RECEIVE_BUFFER_BYTES) -> int:
    """Ask for a ``size``-byte SO_RCVBUF on every UDP socket of the receiver's ICE transport.

    A publisher's keyframe arrives as a burst of about 50 datagrams; if the worker is
    descheduled for a few ms meanwhile, the default 208 KiB buffer (about 90 datagrams of
    kernel accounting) overflows and the kernel drops them. Linux caps the size at
    ``net.core.rmem_max`` without an error, so this returns the smallest size the kernel
    granted (``getsockopt`` reports twice the usable size; this halves it back), or 0 when
    there is no socket yet.

    Touches ``RTCIceTransport._connection`` and aioice ``Connection._protocols`` (one
    ``StunProtocol`` per local candidate, each with its ``transport``). Call it once ICE
    has gathered (after ``setLocalDescription``); with max-bundle one socket serves all.
    """
    granted: list[int] = []
    for protocol in receiver.transport.transport._connection._protocols:
        sock = protocol.transport.get_extra_info("socket")
        if sock is None or sock.type != socket.SOCK_DGRAM:
            continue
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        granted.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2)
    return min(granted, default=0)


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


_Parse = TypeVar("_Parse", bound=Callable[..., Any])


def _refusing_with_value_error(parse: _Parse) -> _Parse:
    @functools.wraps(parse)
    def parse_or_refuse(*args: Any, **kwargs: Any) -> Any:
        try:
            return parse(*args, **kwargs)
        except struct.error as exc:
            raise ValueError(f"malformed packet: {exc}") from exc

    return parse_or_refuse  # type: ignore[return-value]


@contextmanager
def refuse_malformed_packets() -> Iterator[None]:
    """Make aiortc's packet parsers refuse what they cannot read with ValueError.

    aiortc 1.16.0 reads some fields of a received packet with ``struct.unpack`` and no length
    check: a header extension whose length is not its negotiated extension's
    (``HeaderExtensionsMap.get``: abs-send-time, audio level ...), and a REMB whose SSRC
    count runs past its FCI (``unpack_remb_fci``). ``struct.error`` is not a ValueError, the
    only error ``RTCDtlsTransport`` and ``RtpRouter`` catch around them, so one such packet
    ends the transport's receive loop and closes the peer's connection. tests/fuzz found
    both (reproducers: tests/fuzz/corpus/*/crash-aiortc-*).

    Touches ``aiortc.rtp.HeaderExtensionsMap.get``, ``aiortc.rtp.unpack_remb_fci`` (which
    ``RtpRouter.route_rtcp`` calls through the module) and the ``unpack_remb_fci`` that
    ``aiortc.rtcrtpsender`` imported.
    """
    original_get = aiortc.rtp.HeaderExtensionsMap.get
    original_remb = aiortc.rtp.unpack_remb_fci
    sender_remb = aiortc.rtcrtpsender.unpack_remb_fci
    aiortc.rtp.HeaderExtensionsMap.get = _refusing_with_value_error(original_get)  # type: ignore[method-assign]
    aiortc.rtp.unpack_remb_fci = _refusing_with_value_error(original_remb)
    aiortc.rtcrtpsender.unpack_remb_fci = aiortc.rtp.unpack_remb_fci
    try:
        yield
    finally:
        aiortc.rtp.HeaderExtensionsMap.get = original_get  # type: ignore[method-assign]
        aiortc.rtp.unpack_remb_fci = original_remb
        aiortc.rtcrtpsender.unpack_remb_fci = sender_remb


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


def header_extensions_map(sender: RTCRtpSender) -> HeaderExtensionsMap:
    """The extension map of the sender's transport (see :func:`serialize_for`)."""
    extensions_map: HeaderExtensionsMap = sender.transport._rtp_header_extensions_map
    return extensions_map


def sender_started(sender: RTCRtpSender) -> bool:
    """True once ``RTCRtpSender.send`` ran: the transport's extension map has its ids then.

    Touches ``RTCRtpSender.__started`` (name-mangled ``_RTCRtpSender__started``). aiortc
    calls ``send`` only after DTLS is up, so a packet forwarded in between would be written
    with an extension map that does not have the slot's ids yet.
    """
    return bool(getattr(sender, "_RTCRtpSender__started"))  # noqa: B009


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


class SrtpProtector:
    """``pylibsrtp.Session.protect`` without its per-call wrapper work: same C call, same bytes.

    ``Session.protect`` costs about twice its C call: a name-mangled method, type and length
    checks, and a fresh ``ffi.new("int *")`` per packet. This keeps one length cell and
    calls ``srtp_protect`` on the session's own state and buffer, so its output is the
    session's, byte for byte (``tests/media/test_aiortc_seams.py`` compares the two).

    Touches pylibsrtp 1.0 private names: ``Session._srtp`` (``srtp_t *``), ``Session._cdata``
    (its 1,500-byte ``char[]``) and ``Session._buffer`` (an ``ffi.buffer`` over it),
    ``pylibsrtp._binding`` (``ffi``, ``lib.srtp_protect``), ``pylibsrtp.SRTP_MAX_TRAILER_LEN``
    and ``pylibsrtp._srtp_assert`` (status code to :data:`SrtpError`).
    """

    __slots__ = ("_buffer", "_cdata", "_length", "_limit", "_session", "_srtp")

    def __init__(self, session: pylibsrtp.Session) -> None:
        private: Any = session
        self._session = session  # keeps the C state alive
        self._srtp = private._srtp[0]
        self._cdata = private._cdata
        self._buffer = private._buffer
        self._length = _srtp_ffi.new("int *")
        self._limit = len(self._cdata) - pylibsrtp.SRTP_MAX_TRAILER_LEN

    def protect(self, data: bytes) -> bytes:
        """Apply SRTP protection to one RTP packet (bytes)."""
        size = len(data)
        if size > self._limit:
            raise ValueError("packet is too long")
        self._buffer[0:size] = data
        length = self._length
        length[0] = size
        status = _srtp_protect(self._srtp, self._cdata, length)
        if status:
            _srtp_assert(status)
        protected: bytes = self._buffer[0 : length[0]]
        return protected


class SlotTransmitter:
    """SRTP-protect and send a slot's RTP packets synchronously, without aiortc's coroutines.

    :func:`send_packet` goes through four awaited Python layers per packet
    (``RTCDtlsTransport._send_rtp``, ``RTCIceTransport._send``, aioice ``Connection.sendto``,
    ``StunProtocol.send_data``) before asyncio's ``DatagramTransport.sendto``. Every one of
    them is a plain call that never suspends, so the forwarding hot path does the same work
    in one synchronous method: protect with the DTLS transport's SRTP session and hand the
    datagram to the nominated pair's datagram transport. UDP never blocks: asyncio's
    ``sendto`` buffers on EAGAIN exactly as it does for the stock path.

    Touches, on aiortc 1.16.0 / aioice 0.10: ``RTCDtlsTransport._state`` (``State.CONNECTED``),
    ``RTCDtlsTransport._tx_srtp`` (protected through :class:`SrtpProtector`), the transmit counters
    ``_RTCDtlsTransport__tx_bytes`` / ``__tx_packets`` (kept true for ``getStats``),
    ``RTCIceTransport._connection`` and aioice ``Connection._nominated`` (component 1: the
    pair aioice's own ``sendto`` would use), whose ``protocol.transport`` and
    ``remote_addr`` it sends with. The pair is read per packet, so a re-nominated pair is
    followed at once.
    """

    __slots__ = ("_dtls", "_nominated", "_protector", "_session")

    def __init__(self, sender: RTCRtpSender) -> None:
        self._dtls: Any = sender.transport  # Any: the name-mangled counters
        self._nominated: dict[int, Any] = self._dtls.transport._connection._nominated
        self._session: pylibsrtp.Session | None = None
        self._protector: SrtpProtector | None = None

    def send(self, data: bytes) -> bool:
        """Protect and send one serialized RTP packet; False if the transport is not up.

        Raises :data:`SrtpError` when SRTP refuses the packet: an index its replay window
        rejects, i.e. a sequence number far behind the newest sent on this SSRC (a late
        duplicate from the publisher).
        """
        dtls = self._dtls
        if dtls._state is not _DTLS_CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is None:
            return False
        session = dtls._tx_srtp
        protector = self._protector
        if session is not self._session or protector is None:  # first packet, or new keys
            protector = self._protector = SrtpProtector(session)
            self._session = session
        protected = protector.protect(data)
        pair.protocol.transport.sendto(protected, pair.remote_addr)
        dtls._RTCDtlsTransport__tx_bytes += len(protected)
        dtls._RTCDtlsTransport__tx_packets += 1
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
