"""Negotiation: the room's aiortc peer connections, made and negotiated once, and closed.

- A **publish** connection answers the participant's offer with one receive-only
  transceiver per offered m-line, created in m-line order so that
  ``setRemoteDescription`` pairs them up in that order (:mod:`~media_fleet.sfu.sdp` labels
  them by position).
- A **subscribe** connection is the room's offer: one send-only transceiver per slot, each
  with a :class:`~media_fleet.rtc.seams.PlaceholderTrack`, then the data channel. The
  answer says, per mid, which payload type the subscriber gave each codec
  (:func:`negotiated_payload_types`).
- Codec preferences are VP8 then H.264 for video (a publisher offering both sends VP8; any
  source can feed any subscriber slot) and Opus for audio, each with RTX: forwarding never
  transcodes.

Every connection uses ``bundlePolicy=max-bundle`` and no ICE server but the TURN servers a
request names: see :func:`new_peer_connection`.
"""

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp

from contracts.node_api import IceServer
from media_fleet.rtc import seams

from .peer_connection_sink import NegotiatedCodecs
from .sdp import OfferedTrack

logger = logging.getLogger(__name__)

VIDEO_MIME_TYPES = ("video/vp8", "video/h264")
"Forwarded video codecs, preferred first: a publisher offering both sends VP8."


def new_peer_connection(ice_servers: Sequence[IceServer] = ()) -> RTCPeerConnection:
    """`ice_servers`: TURN servers to gather a relay candidate on (the control plane sends
    them when the deployment relays media nodes too; docs/turn.md). Never the default public
    STUN server, which would stall gathering on a closed network. max-bundle: with aiortc's
    default "balanced" policy the third m-line of one kind stays on a transport that
    bundling stops, and never carries a packet."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s["username"], credential=s["credential"])
        for s in ice_servers
    ]
    return RTCPeerConnection(
        RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """VP8 then H.264 (video) or Opus (audio), plus RTX: forwarding never transcodes.

    On a publish connection the order makes a publisher that offers both send VP8; on a
    subscribe connection every video slot offers both, so any source can feed any slot.
    """
    wanted = VIDEO_MIME_TYPES if kind == "video" else ("audio/opus",)
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    rtx = [c for c in codecs if c.mimeType.lower() == f"{kind}/rtx"]
    return [c for mime in wanted for c in codecs if c.mimeType.lower() == mime] + rtx


def add_receivers(
    pc: RTCPeerConnection, tracks: list[OfferedTrack]
) -> dict[RTCRtpTransceiver, OfferedTrack]:
    """One receive-only transceiver per offered track, in m-line order."""
    offered: dict[RTCRtpTransceiver, OfferedTrack] = {}
    for track in tracks:
        transceiver = pc.addTransceiver(track.kind, direction="recvonly")
        transceiver.setCodecPreferences(codec_preferences(track.kind))
        offered[transceiver] = track
    return offered


async def answer(pc: RTCPeerConnection, offer_sdp: str) -> None:
    """Apply a publish offer and make the answer; ValueError (and closed) if refused."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as error:
        await pc.close()
        raise ValueError(f"the publish offer was refused: {error}") from error


def add_slot(pc: RTCPeerConnection, media: str) -> RTCRtpTransceiver:
    """A send-only slot transceiver (``media`` is "audio" or "video")."""
    transceiver = pc.addTransceiver(seams.PlaceholderTrack(media), direction="sendonly")
    transceiver.setCodecPreferences(codec_preferences(media))
    return transceiver


async def offer(pc: RTCPeerConnection) -> None:
    """Make the subscribe offer (aiortc gathers before it returns); closed if it fails."""
    try:
        await pc.setLocalDescription(await pc.createOffer())
    except Exception:
        await pc.close()
        raise


async def accept(pc: RTCPeerConnection, answer_sdp: str) -> NegotiatedCodecs:
    """Apply the subscriber's answer; its payload types per mid."""
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
    return negotiated_payload_types(answer_sdp)


def negotiated_payload_types(answer_sdp: str) -> NegotiatedCodecs:
    """Per mid of a subscribe answer: payload type per codec, and RTX payload type per type.

    The first payload type of each MIME type wins (H.264 is offered in two profiles; the
    forwarded stream is written with the first, which receivers decode alike).
    """
    description = aiortc_sdp.SessionDescription.parse(answer_sdp)
    negotiated: NegotiatedCodecs = {}
    for media in description.media:
        if media.rtp.muxId is None:
            continue
        by_mime: dict[str, int] = {}
        rtx: dict[int, int] = {}
        for codec in media.rtp.codecs:
            if codec.payloadType is None:
                continue
            mime = codec.mimeType.lower()
            if mime.endswith("/rtx"):
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    rtx[apt] = codec.payloadType
            else:
                by_mime.setdefault(mime, codec.payloadType)
        negotiated[media.rtp.muxId] = (by_mime, rtx)
    return negotiated


def enlarge_receive_buffers(pc: RTCPeerConnection, meeting_id: str) -> None:
    """Room for keyframe bursts on a publish connection's sockets (see seams)."""
    for transceiver in pc.getTransceivers()[:1]:  # max-bundle: one transport for all
        try:
            granted = seams.enlarge_receive_buffers(transceiver.receiver)
        except OSError:
            logger.exception("room %s: SO_RCVBUF could not be set", meeting_id)
            continue
        if 0 < granted < seams.RECEIVE_BUFFER_BYTES:
            _small_receive_buffer(granted)


@functools.cache  # once per process (and size): it is the host's limit, not the room's
def _small_receive_buffer(granted: int) -> None:
    logger.info(
        "SO_RCVBUF is %d bytes, not %d: raise net.core.rmem_max for the node",
        granted, seams.RECEIVE_BUFFER_BYTES,
    )  # fmt: skip


def when_lost(pc: RTCPeerConnection, lost: Callable[[], None]) -> None:
    """Call ``lost`` when the connection fails or closes (ICE consent ran out, the client
    closed its side): such a client never calls leave."""

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            lost()


async def close(pc: RTCPeerConnection, meeting_id: str, participant_id: str, what: str) -> None:
    """Close a connection, logging (not raising) a failure: leaving never fails."""
    try:
        await asyncio.wait_for(pc.close(), 10)
    except Exception:
        logger.exception(
            "room %s: closing %s's %s connection failed", meeting_id, participant_id, what
        )
