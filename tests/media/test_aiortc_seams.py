"""Guards for the private aiortc hooks in media_fleet.rtc.seams.

aiortc has no forwarding API, so the node reaches into private internals. Each test here
names the seam it pins; when an aiortc upgrade moves one, the failure says which and which
release the seams were written for. Fix media_fleet/rtc/seams.py, then the pin.
"""

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
    unwrap_rtx,
    wrap_rtx,
)

from media_fleet.rtc import seams
from tests.media.synthetic_media import FlatVideoTrack
from tests.media.test_forwarding_loopback import connect, peer, wait_until


def moved(seam: str) -> str:
    return (
        f"aiortc seam moved: {seam}. media_fleet/rtc/seams.py was written against aiortc "
        f"{seams.ASSUMED_AIORTC_VERSION}; installed is {aiortc.__version__}."
    )


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_pinned_version() -> None:
    assert seams.aiortc_version_matches(), moved("the pinned release itself")


def test_receive_hook_seam() -> None:
    handler = RTCRtpReceiver._handle_rtp_packet
    assert inspect.iscoroutinefunction(handler), moved("RTCRtpReceiver._handle_rtp_packet")
    assert parameters(handler) == ["self", "packet", "arrival_time_ms"], moved(
        "RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)"
    )
    caller = RTCDtlsTransport._handle_rtp_data.__code__
    assert "_handle_rtp_packet" in caller.co_names, moved(
        "RTCDtlsTransport._handle_rtp_data no longer calls receiver._handle_rtp_packet"
    )


def test_decoder_seams() -> None:
    assert callable(getattr(aiortc.rtcrtpreceiver, "get_decoder", None)), moved(
        "aiortc.rtcrtpreceiver.get_decoder"
    )
    assert "get_decoder" in aiortc.rtcrtpreceiver.decoder_worker.__code__.co_names, moved(
        "decoder_worker looks up get_decoder in aiortc.rtcrtpreceiver"
    )
    receive = RTCRtpReceiver.receive.__code__.co_names
    assert "_RTCRtpReceiver__decoder_queue" in receive, moved("RTCRtpReceiver.__decoder_queue")
    assert "_RTCRtpReceiver__decoder_thread" in receive, moved("RTCRtpReceiver.__decoder_thread")
    assert "_RTCRtpReceiver__decoder_thread" in RTCRtpReceiver._handle_rtp_packet.__code__.co_names
    receiver = RTCRtpReceiver("video", SimpleNamespace(state="new"))  # type: ignore[arg-type]
    assert hasattr(receiver, "_RTCRtpReceiver__decoder_queue"), moved("__decoder_queue")
    assert hasattr(receiver, "_RTCRtpReceiver__decoder_thread"), moved("__decoder_thread")


async def test_encoder_and_sender_seams() -> None:
    assert callable(getattr(aiortc.rtcrtpsender, "get_encoder", None)), moved(
        "aiortc.rtcrtpsender.get_encoder"
    )
    assert "get_encoder" in RTCRtpSender._next_encoded_frame.__code__.co_names, moved(
        "RTCRtpSender._next_encoded_frame looks up get_encoder in aiortc.rtcrtpsender"
    )
    sender = RTCRtpSender("video", SimpleNamespace(state="new"))  # type: ignore[arg-type]
    for name in ("_ssrc", "_rtx_ssrc", "_RTCRtpSender__rtp_task"):
        assert hasattr(sender, name), moved(f"RTCRtpSender.{name}")
    handler = RTCRtpSender._handle_rtcp_packet
    assert inspect.iscoroutinefunction(handler), moved("RTCRtpSender._handle_rtcp_packet")
    assert parameters(handler) == ["self", "packet"], moved("_handle_rtcp_packet(packet)")
    transceiver = RTCRtpTransceiver("video", receiver=None, sender=sender)  # type: ignore[arg-type]
    assert transceiver._codecs == [], moved("RTCRtpTransceiver._codecs")


def test_send_and_keyframe_seams() -> None:
    send = RTCDtlsTransport._send_rtp
    assert inspect.iscoroutinefunction(send), moved("RTCDtlsTransport._send_rtp")
    assert parameters(send) == ["self", "data"], moved("RTCDtlsTransport._send_rtp(data)")
    assert "_rtp_header_extensions_map" in RTCDtlsTransport.__init__.__code__.co_names, moved(
        "RTCDtlsTransport._rtp_header_extensions_map"
    )
    pli = RTCRtpReceiver._send_rtcp_pli
    assert inspect.iscoroutinefunction(pli), moved("RTCRtpReceiver._send_rtcp_pli")
    assert parameters(pli) == ["self", "media_ssrc"], moved("_send_rtcp_pli(media_ssrc)")


def test_packet_api() -> None:
    packet = RtpPacket(payload_type=96, marker=1, sequence_number=7, timestamp=9, ssrc=5)
    for name in ("version", "csrc", "payload", "padding_size", "extensions"):
        assert hasattr(packet, name), moved(f"RtpPacket.{name}")
    assert isinstance(packet.extensions, HeaderExtensions), moved("RtpPacket.extensions")
    for name in ("audio_level", "abs_send_time", "mid"):
        assert hasattr(packet.extensions, name), moved(f"HeaderExtensions.{name}")
    assert parameters(RtpPacket.serialize) == ["self", "extensions_map"], moved(
        "RtpPacket.serialize(extensions_map)"
    )
    assert parameters(wrap_rtx) == ["packet", "payload_type", "sequence_number", "ssrc"], moved(
        "aiortc.rtp.wrap_rtx"
    )
    packet.payload = b"abc"
    rtx = wrap_rtx(packet, payload_type=97, sequence_number=1, ssrc=6)
    assert rtx.payload == b"\x00\x07abc", moved("wrap_rtx payload (OSN + payload)")
    assert unwrap_rtx(rtx, payload_type=96, ssrc=5).sequence_number == 7
    info = RtcpSenderInfo(ntp_timestamp=1, rtp_timestamp=2, packet_count=3, octet_count=4)
    assert len(bytes(RtcpSrPacket(ssrc=1, sender_info=info))) == 28, moved("RtcpSrPacket")


@pytest.mark.usefixtures("loopback_only")
async def test_seams_behave_on_a_real_connection(caplog: pytest.LogCaptureFixture) -> None:
    """Hooks see decrypted packets, survive their own errors, keep stock RTCP, send PLIs."""
    caplog.set_level(logging.ERROR, logger="media_fleet")
    publisher, node = peer(), peer()
    packets: list[RtpPacket] = []
    feedback: list[AnyRtcpPacket] = []
    hooked: list[RTCRtpReceiver] = []
    discarded: list[seams.DiscardedFrames] = []

    async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        packets.append(packet)
        if len(packets) == 1:
            raise RuntimeError("a bug in our hook")

    async def on_feedback(packet: AnyRtcpPacket) -> None:
        feedback.append(packet)

    @node.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        for transceiver in node.getTransceivers():
            if transceiver.receiver.track is track:
                hooked.append(transceiver.receiver)
                discarded.append(seams.discard_encoded_frames(transceiver.receiver))
                seams.install_receive_hook(transceiver.receiver, on_packet)

    try:
        with seams.watch_codecs() as codecs:
            publisher.addTrack(AudioStreamTrack())
            video_sender = publisher.addTrack(FlatVideoTrack(100))
            seams.install_feedback_hook(video_sender, on_feedback)
            data = seams.serialize_for(video_sender, RtpPacket(payload_type=96))
            assert not await seams.send_packet(video_sender, data)  # not connected yet

            await connect(publisher, node)
            await wait_until(lambda: len(packets) > 100, "100 packets through the receive hook")
            assert node.connectionState == "connected", moved("a hook error closed the peer")
            assert any(p.extensions.audio_level is not None for p in packets), moved(
                "audio-level extension parsed before the hook"
            )
            assert any("receive hook failed" in r.getMessage() for r in caplog.records)

            # the stock handler still ran: inbound statistics exist for both tracks
            for receiver in hooked:
                stats = await receiver.getStats()
                inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
                assert inbound and inbound[0].packetsReceived > 0, moved("stock handler chain")

            # nothing decoded: frames were assembled and thrown away
            assert sum(d.count for d in discarded) > 0, moved("RTCRtpReceiver.__decoder_queue")
            assert not any(codecs.decoded_for(r) for r in hooked), moved("get_decoder")
            assert codecs.encoded_for(video_sender), moved("get_encoder attribution")

            # a PLI through the node's receiver reaches the publisher's sender
            video = next(r for r in hooked if r.track.kind == "video")
            await seams.request_keyframe(video, video_sender._ssrc)
            await wait_until(
                lambda: any(
                    isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_PLI for p in feedback
                ),
                "the PLI at the publisher",
                timeout=5.0,
            )
    finally:
        await asyncio.wait_for(publisher.close(), 5)
        await asyncio.wait_for(node.close(), 5)
    assert not await seams.send_packet(video_sender, data)  # closed


async def test_placeholder_track_never_yields() -> None:
    track = seams.PlaceholderTrack("video")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(track.recv(), 0.05)


def test_decoder_thread_seam() -> None:
    names = RTCRtpReceiver.receive.__code__.co_names
    assert "threading" in names and "Thread" in names, moved(
        "RTCRtpReceiver.receive() builds its decoder thread with threading.Thread"
    )
    assert aiortc.rtcrtpreceiver.threading is threading, moved(
        "aiortc.rtcrtpreceiver imports the threading module as `threading`"
    )


@pytest.mark.usefixtures("loopback_only")
async def test_no_decoder_thread_starts_on_a_forwarding_receiver() -> None:
    """Under no_decoder_threads() a receiver takes packets with no decoder thread at all; the
    same connection without it starts one (so this test can tell the difference)."""

    async def decoder_threads_while_receiving(patched: bool) -> int:
        publisher, node = peer(), peer()
        packets: list[RtpPacket] = []

        @node.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in node.getTransceivers():
                if transceiver.receiver.track is track:
                    seams.discard_encoded_frames(transceiver.receiver)

                    async def count(packet: RtpPacket, arrival_time_ms: int) -> None:
                        packets.append(packet)

                    seams.install_receive_hook(transceiver.receiver, count)

        try:
            publisher.addTrack(AudioStreamTrack())
            # receive() runs once DTLS is up, after negotiation: the patch must span both.
            with seams.no_decoder_threads() if patched else contextlib.nullcontext():
                await connect(publisher, node)
                await wait_until(lambda: len(packets) > 20, "audio packets at the node")
                return seams.decoder_threads_alive()
        finally:
            await publisher.close()
            await node.close()

    assert await decoder_threads_while_receiving(patched=True) == 0
    assert await decoder_threads_while_receiving(patched=False) == 1
    assert seams.decoder_threads_alive() == 0  # stopped with its receiver


def test_transmitter_seams() -> None:
    """SlotTransmitter, sender_started and header_extensions_map: the private names they read."""
    from aiortc.rtcdtlstransport import State

    assert hasattr(State, "CONNECTED"), moved("aiortc.rtcdtlstransport.State.CONNECTED")
    init = RTCDtlsTransport.__init__.__code__.co_names
    for name in ("_state", "_tx_srtp", "_RTCDtlsTransport__tx_bytes", "_transport"):
        assert name in init, moved(f"RTCDtlsTransport.{name}")
    send_rtp = RTCDtlsTransport._send_rtp.__code__.co_names
    for name in ("_tx_srtp", "protect", "_RTCDtlsTransport__tx_packets"):
        assert name in send_rtp, moved(f"RTCDtlsTransport._send_rtp uses {name}")
    assert "_nominated" in aioice.ice.Connection.sendto.__code__.co_names, moved(
        "aioice Connection.sendto sends on Connection._nominated[component]"
    )
    send_data = aioice.ice.StunProtocol.send_data.__code__.co_names
    assert "transport" in send_data and "sendto" in send_data, moved(
        "aioice StunProtocol.send_data is transport.sendto(data, addr)"
    )
    assert "_RTCRtpSender__started" in RTCRtpSender.send.__code__.co_names, moved(
        "RTCRtpSender.__started"
    )


@pytest.mark.usefixtures("loopback_only")
async def test_transmitter_sends_what_the_stock_path_sends() -> None:
    """SlotTransmitter on a real connection: protected, routed, counted; SRTP refuses an
    index far older than the newest sent (a duplicate of a long-gone packet)."""
    node, subscriber = peer(), peer()
    received: list[RtpPacket] = []

    @subscriber.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        for transceiver in subscriber.getTransceivers():
            if transceiver.receiver.track is track:

                async def collect(packet: RtpPacket, arrival_time_ms: int) -> None:
                    received.append(packet)

                seams.discard_encoded_frames(transceiver.receiver)  # the payloads are not VP8
                seams.install_receive_hook(transceiver.receiver, collect)

    transceiver = node.addTransceiver(seams.PlaceholderTrack("video"), direction="sendonly")
    sender = transceiver.sender
    transmitter = seams.SlotTransmitter(sender)
    try:
        assert not seams.sender_started(sender)
        assert not transmitter.send(RtpPacket(payload_type=96).serialize())  # not connected yet
        await connect(node, subscriber)
        await wait_until(lambda: seams.sender_started(sender), "the slot sender started")
        parameters = seams.slot_parameters(transceiver)
        extensions = seams.header_extensions_map(sender)
        for seq in range(100, 110):
            packet = RtpPacket(
                payload_type=parameters.payload_type,
                marker=1,
                sequence_number=seq,
                timestamp=seq * 3000,
                ssrc=parameters.ssrc,
                payload=b"\x10\x00\x9d\x01\x2a" + bytes([seq]) * 100,
            )
            packet.extensions.mid = parameters.mid
            assert transmitter.send(packet.serialize(extensions))
        await wait_until(lambda: len(received) == 10, "10 packets at the subscriber")
        assert [p.sequence_number for p in received] == list(range(100, 110))
        assert received[3].payload == b"\x10\x00\x9d\x01\x2a" + bytes([103]) * 100
        stats = await sender.getStats()
        transport_stats = [s for s in stats.values() if s.type == "transport"]
        assert transport_stats and transport_stats[0].packetsSent >= 10, moved("__tx_packets")
        packet.sequence_number = 2000
        assert transmitter.send(packet.serialize(extensions))
        packet.sequence_number = 100  # far behind the newest index sent: SRTP refuses it
        with pytest.raises(seams.SrtpError):
            transmitter.send(packet.serialize(extensions))
    finally:
        await asyncio.wait_for(node.close(), 5)
        await asyncio.wait_for(subscriber.close(), 5)
    assert not transmitter.send(packet.serialize(extensions))  # closed


def test_forwarding_receive_hook_seams() -> None:
    init = RTCRtpReceiver.__init__.__code__.co_names
    for name in (
        "_RTCRtpReceiver__codecs",
        "_RTCRtpReceiver__remote_streams",
        "_RTCRtpReceiver__rtx_ssrc",
        "_RTCRtpReceiver__nack_generator",
        "_RTCRtpReceiver__remote_bitrate_estimator",
        "_RTCRtpReceiver__rtcp_ssrc",
        "_enabled",
    ):
        assert name in init, moved(f"RTCRtpReceiver.{name}")
    stock = RTCRtpReceiver._handle_rtp_packet.__code__.co_names
    for name in ("_send_rtcp", "_send_rtcp_nack", "add", "missing"):
        assert name in stock, moved(f"RTCRtpReceiver._handle_rtp_packet uses {name}")
    # receive() fills the dicts made in __init__ in place (the hook binds them at install)
    receive = RTCRtpReceiver.receive.__code__.co_names
    assert "_RTCRtpReceiver__codecs" in receive and "_RTCRtpReceiver__rtx_ssrc" in receive
    assert "_RTCRtpReceiver__remote_streams" in RTCRtpReceiver._run_rtcp.__code__.co_names, moved(
        "receiver reports read RTCRtpReceiver.__remote_streams"
    )
    assert parameters(RTCRtpReceiver._send_rtcp_nack) == ["self", "media_ssrc", "lost"], moved(
        "RTCRtpReceiver._send_rtcp_nack(media_ssrc, lost)"
    )


@pytest.mark.usefixtures("loopback_only")
async def test_forwarding_receive_hook_keeps_what_the_publisher_needs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without aiortc's handler: packets reach the hook, receiver reports, REMB and NACKs
    still reach the publisher, and no frame is ever assembled."""
    caplog.set_level(logging.ERROR)
    publisher, node = peer(), peer()
    packets: list[RtpPacket] = []
    feedback: list[AnyRtcpPacket] = []
    hooked: list[RTCRtpReceiver] = []
    discarded: list[seams.DiscardedFrames] = []

    async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        packets.append(packet)

    async def on_feedback(packet: AnyRtcpPacket) -> None:
        feedback.append(packet)

    @node.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        for transceiver in node.getTransceivers():
            if transceiver.receiver.track is track:
                hooked.append(transceiver.receiver)
                discarded.append(seams.discard_encoded_frames(transceiver.receiver))
                seams.install_forwarding_receive_hook(transceiver.receiver, on_packet)

    def got(kind: type, fmt: int | None = None) -> bool:
        return any(
            isinstance(p, kind) and (fmt is None or getattr(p, "fmt", None) == fmt)
            for p in feedback
        )

    try:
        video_sender = publisher.addTrack(FlatVideoTrack(100))
        seams.install_feedback_hook(video_sender, on_feedback)
        await connect(publisher, node)
        await wait_until(lambda: len(packets) > 30, "30 packets through the hook")
        receiver = hooked[0]
        stats = await receiver.getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        assert inbound and inbound[0].packetsReceived > 0, moved("RTCRtpReceiver.__remote_streams")
        await wait_until(lambda: got(RtcpRrPacket), "a receiver report at the publisher", 5.0)
        await wait_until(
            lambda: got(RtcpPsfbPacket, RTCP_PSFB_APP), "a REMB at the publisher", 10.0
        )

        # a gap of two sequence numbers: the node NACKs both
        last = packets[-1]
        gap = RtpPacket(
            payload_type=last.payload_type,
            sequence_number=(last.sequence_number + 200) & 0xFFFF,
            timestamp=last.timestamp,
            ssrc=last.ssrc,
            payload=last.payload,
        )
        await receiver._handle_rtp_packet(gap, arrival_time_ms=0)
        await wait_until(lambda: got(RtcpRtpfbPacket, RTCP_RTPFB_NACK), "a NACK", 5.0)
        assert sum(d.count for d in discarded) == 0  # no frame was assembled at all
        assert not [r for r in caplog.records if r.name.startswith("media_fleet")]
    finally:
        await asyncio.wait_for(publisher.close(), 5)
        await asyncio.wait_for(node.close(), 5)


async def test_one_remb_covers_every_video_stream_of_a_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera and its scaled-down copy share one transport, and Chrome caps the whole
    transport with the latest REMB: the node must send one estimate naming both SSRCs, not one
    per stream (whose small stream's value would starve the camera)."""
    caplog.set_level(logging.ERROR)
    publisher, node = peer(), peer()
    rembs: list[tuple[int, list[int]]] = []
    bandwidth = seams.ReceiveBandwidthEstimate()

    async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        return None

    async def on_feedback(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            rembs.append(unpack_remb_fci(packet.fci))

    @node.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        for transceiver in node.getTransceivers():
            if transceiver.receiver.track is track:
                seams.install_forwarding_receive_hook(transceiver.receiver, on_packet, bandwidth)

    try:
        camera = publisher.addTrack(FlatVideoTrack(100, 320, 240))
        low = publisher.addTrack(FlatVideoTrack(50, 80, 60))
        for sender in (camera, low):
            seams.install_feedback_hook(sender, on_feedback)
        await connect(publisher, node)
        both = {camera._ssrc, low._ssrc}
        await wait_until(
            lambda: any(both <= set(ssrcs) for _, ssrcs in rembs),
            "a REMB naming both video streams",
            10.0,
        )
        # Every REMB after the first packets of both streams names both: never one alone.
        later = rembs[next(i for i, (_, s) in enumerate(rembs) if both <= set(s)) :]
        assert all(both <= set(ssrcs) for _, ssrcs in later), later
        assert not [r for r in caplog.records if r.name.startswith("media_fleet")]
    finally:
        await asyncio.wait_for(publisher.close(), 5)
        await asyncio.wait_for(node.close(), 5)


def kernel_rmem_max() -> int:
    """The kernel's cap on SO_RCVBUF."""
    with open("/proc/sys/net/core/rmem_max") as limit:
        return int(limit.read())


@pytest.mark.usefixtures("loopback_only")
async def test_enlarge_receive_buffers_reaches_the_ice_sockets() -> None:
    import socket

    rmem_max = kernel_rmem_max()
    node = peer()
    try:
        transceiver = node.addTransceiver("video", direction="recvonly")
        assert seams.enlarge_receive_buffers(transceiver.receiver) == 0  # nothing gathered yet
        await node.setLocalDescription(await node.createOffer())
        granted = seams.enlarge_receive_buffers(transceiver.receiver, 1 << 20)
        assert granted == min(1 << 20, rmem_max), moved("aioice Connection._protocols")
        protocols = transceiver.receiver.transport.transport._connection._protocols
        assert protocols, moved("aioice Connection._protocols")
        for protocol in protocols:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2 == granted
    finally:
        await asyncio.wait_for(node.close(), 5)


def srtp_twins() -> tuple[Any, Any]:
    """Two pylibsrtp sessions with the same outbound key (aiortc's preferred profile)."""
    import os

    import pylibsrtp

    key = os.urandom(32 + 12)

    def session() -> pylibsrtp.Session:
        return pylibsrtp.Session(
            pylibsrtp.Policy(
                key=key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
            )
        )

    return session(), session()


def test_srtp_protector_seam_gives_the_session_bytes() -> None:
    import pylibsrtp

    for name in ("_srtp", "_cdata", "_buffer"):
        assert hasattr(srtp_twins()[0], name), f"pylibsrtp moved Session.{name}"
    for name in ("_binding", "_srtp_assert", "SRTP_MAX_TRAILER_LEN"):
        assert hasattr(pylibsrtp, name), f"pylibsrtp moved {name}"
    stock, twin = srtp_twins()
    fast = seams.SrtpProtector(twin)
    extensions = HeaderExtensionsMap()
    for seq in [*range(65530, 65536), *range(0, 40)]:  # across a wrap: the rollover counter
        for ssrc in (1, 0xFFFFFFFF):
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq, ssrc=ssrc)
            packet.payload = bytes([seq & 0xFF]) * (seq % 1300)
            data = packet.serialize(extensions)
            assert fast.protect(data) == stock.protect(data), seq
    with pytest.raises(seams.SrtpError):  # far behind the newest index: refused, as stock
        fast.protect(RtpPacket(payload_type=96, sequence_number=65000, ssrc=1).serialize())
    with pytest.raises(ValueError):
        fast.protect(bytes(12) + bytes(1500))


def test_refuse_malformed_packets_seam() -> None:
    """aiortc's struct.error on a malformed extension or REMB becomes the ValueError its
    transport catches (tests/fuzz/corpus/*/crash-aiortc-* are the fuzzers' reproducers)."""
    import struct

    from aiortc.rtp import RtpPacket, unpack_remb_fci

    from tests.fuzz.fuzz_rtp_packet import extensions_map

    # abs-send-time (id 2) in a one-byte element of length 1 instead of 3
    packet = bytes([0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xBE, 0xDE, 0, 1, 0x20, 0x55, 0, 0])
    video = extensions_map(1, 2, 0)
    remb = b"REMB\x05\x00\x10\x00"  # names 5 SSRCs, carries none
    with pytest.raises(struct.error):
        RtpPacket.parse(packet, video)
    with seams.refuse_malformed_packets():
        with pytest.raises(ValueError, match="malformed packet"):
            RtpPacket.parse(packet, video)
        for unpack in (aiortc.rtp.unpack_remb_fci, aiortc.rtcrtpsender.unpack_remb_fci):
            with pytest.raises(ValueError, match="malformed packet"):
                unpack(remb)
        assert aiortc.rtp.unpack_remb_fci(b"REMB\x00\x00\x10\x00") == (4096, [])
    assert aiortc.rtp.unpack_remb_fci is unpack_remb_fci  # restored
    with pytest.raises(struct.error):
        unpack_remb_fci(remb)
