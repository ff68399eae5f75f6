"""H.264 through the room: forwarded as packets, never decoded, mixed with VP8 in one slot.

Headless aiortc clients on 127.0.0.1 (the helpers of ``test_sfu_room``): ``a`` publishes its
camera in H.264 only, ``b`` and ``c`` in VP8. Every subscribe slot offers both codecs, so
``c`` decodes ``a`` and ``b`` side by side, and its speaker slot switches between the H.264
and the VP8 source, each time on the new source's keyframe.
"""

import itertools
import logging
from dataclasses import dataclass

import pytest
from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc import sdp as aiortc_sdp

from media_fleet.rtc import seams
from media_fleet.sfu.room import MeetingRoom
from tests.media.test_sfu_room import LOUD, LUMA, Client, Decoded, near, video_states, wait_until

H264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]


@dataclass
class H264Client(Client):
    """A client whose camera is offered (and so sent) in H.264 only."""

    def __post_init__(self) -> None:
        create_offer = self.publish_pc.createOffer

        async def h264_offer() -> RTCSessionDescription:
            for transceiver in self.publish_pc.getTransceivers():
                if transceiver.kind == "video":
                    transceiver.setCodecPreferences(H264)
            return await create_offer()

        self.publish_pc.createOffer = h264_offer  # type: ignore[method-assign]


def payload_types(client: Client, mime_type: str) -> set[int]:
    """The payload types of ``mime_type`` in the client's subscribe answer."""
    description = aiortc_sdp.SessionDescription.parse(client.subscribe_pc.localDescription.sdp)
    return {
        codec.payloadType
        for media in description.media
        for codec in media.rtp.codecs
        if codec.mimeType.lower() == mime_type and codec.payloadType is not None
    }


def sent_codecs(client: Client) -> list[str]:
    """The video codecs of the room's publish answer, in order (the first one is sent)."""
    description = aiortc_sdp.SessionDescription.parse(client.publish_pc.remoteDescription.sdp)
    return [
        codec.mimeType.lower()
        for media in description.media
        if media.kind == "video"
        for codec in media.rtp.codecs
        if not codec.mimeType.lower().endswith("/rtx")
    ]


async def test_h264_and_vp8_publishers_reach_one_subscriber_without_node_codecs(
    meeting: tuple[MeetingRoom, list[Client]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    room, clients = meeting
    with seams.watch_codecs() as codecs:
        a = H264Client("a", LUMA["a"])
        b, c = Client("b", LUMA["b"]), Client("c", LUMA["c"])
        clients += [a, b, c]
        a.tone.amplitude = LOUD  # a (H.264) starts in the speaker slot
        for client in clients:
            await client.join(room)
        assert set(sent_codecs(a)) == {"video/h264"}  # the room accepted H.264 alone
        assert sent_codecs(b)[0] == "video/vp8"  # and put VP8 first where both were offered

        def feeding(pid: str) -> dict[str, str]:
            return {
                s.feeding_participant_id: s.mid or ""
                for s in video_states(room, pid)
                if s.feeding_participant_id is not None
            }

        await wait_until(lambda: set(feeding("c")) == {"a", "b"}, "c fed by a and b")
        await wait_until(lambda: room.active_speaker == "a", "a as the active speaker")
        await wait_until(
            lambda: video_states(room, "c")[0].feeding_participant_id == "a",
            "a (H.264) in c's speaker slot",
        )
        mids = feeding("c")
        slot0 = video_states(room, "c")[0].mid or ""

        def decoding(mid: str, pid: str, more_than: int = 5) -> bool:
            seen = c.decoded.get(mid, Decoded())
            return seen.frames > more_than and near(seen.luma, LUMA[pid])

        await wait_until(
            lambda: decoding(mids["a"], "a") and decoding(mids["b"], "b"),
            "c decoding a (H.264) and b (VP8)",
            details=lambda: c.decoded,
        )
        # a's packets reached c with c's H.264 payload type, b's with its VP8 one
        h264_types, vp8_types = payload_types(c, "video/h264"), payload_types(c, "video/vp8")
        sent_a = {p.payload_type for p in c.received[mids["a"]] if p.payload}
        sent_b = {p.payload_type for p in c.received[mids["b"]] if p.payload}
        assert sent_a & h264_types and not sent_a & vp8_types
        assert sent_b & vp8_types and not sent_b & h264_types
        # and b decodes a's H.264 too (b's own subscribe connection)
        b_mids = {
            s.feeding_participant_id: s.mid or ""
            for s in video_states(room, "b")
            if s.feeding_participant_id
        }
        await wait_until(
            lambda: near(b.decoded.get(b_mids["a"], Decoded()).luma, LUMA["a"]),
            "b decoding a (H.264)",
        )

        # the speaker slot switches H.264 -> VP8 -> H.264, decoding cleanly each time
        async def switched(pid: str) -> None:
            await wait_until(
                lambda: video_states(room, "c")[0].feeding_participant_id == pid,
                f"{pid} feeding c's speaker slot",
            )
            frames = c.decoded[slot0].frames
            await wait_until(
                lambda: decoding(slot0, pid, frames + 5),
                f"c decoding {pid} in the speaker slot",
                details=lambda: c.decoded,
            )

        for speaker, quiet in ((b, a), (a, b)):
            quiet.tone.amplitude, speaker.tone.amplitude = 0, LOUD
            await switched(speaker.participant_id)
        # nothing in the room decoded or encoded
        assert room.rtp_receivers() and room.rtp_senders()
        assert not any(codecs.decoded_for(r) for r in room.rtp_receivers())
        assert not any(codecs.encoded_for(s) for s in room.rtp_senders())
        assert len(codecs.encoder_tasks) == 6  # the three publishers' audio and camera
    # aiortc's *receiver* (the test clients) hands a frame to the decoder of the packet that
    # completes it, the next frame's first packet: at each codec change on a slot, the old
    # codec's last frame goes once to the new codec's decoder and fails (a browser decodes
    # per frame's own payload type). That, and nothing else, may be logged.
    failed = [r for r in caplog.records if "failed to decode" in r.getMessage()]
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and r not in failed]
    assert not problems, [r.getMessage() for r in problems]
    changes = sum(codec_changes(client) for client in clients)
    assert changes >= 2  # c's speaker slot changed codec at least twice
    assert len(failed) <= changes, [r.getMessage() for r in failed]


def codec_changes(client: Client) -> int:
    """How often the codec changed between consecutive media packets on one of its mids."""
    h264_types = payload_types(client, "video/h264")
    media_types = h264_types | payload_types(client, "video/vp8")
    changes = 0
    for packets in client.received.values():
        kinds = [p.payload_type in h264_types for p in packets if p.payload_type in media_types]
        changes += sum(1 for x, y in itertools.pairwise(kinds) if x != y)
    return changes
