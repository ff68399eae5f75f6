"""What the room reads from a publisher's offer, and the announced-address rewrite.

**Track labels by m-line position.** Chromium names tracks with random ids (the
``a=msid`` track id is the ``MediaStreamTrack`` id, which a page cannot choose), and
munging ``a=mid`` is fragile, so the room labels a publisher's tracks by the order of the
m-lines in the offer, which both aiortc (``addTrack``/``addTransceiver`` order) and Chromium
(the same) keep:

- the first (and only) ``audio`` m-line is the microphone, ``"audio"``;
- the first ``video`` m-line is the camera at full size, ``"camera"``;
- the second ``video`` m-line is the scaled-down camera clone, ``"camera-low"``;
- the third ``video`` m-line is the screen share, ``"screen"``.

A position can be left empty with a transceiver that does not send (direction ``inactive``
or ``recvonly``), e.g. camera + screen without a low clone: video, inactive video, video.
``application`` m-lines (a data channel) are allowed and ignored.

**Codecs.** A sending audio m-line must offer Opus with the audio-level extension; a sending
video m-line must offer VP8 or H.264 (packetization-mode 1; the room picks VP8 when both
are offered).
"""

import re
from dataclasses import dataclass
from typing import Literal

from aiortc import sdp as aiortc_sdp

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

Label = Literal["audio", "camera", "camera-low", "screen"]
VIDEO_LABELS: tuple[Label, ...] = ("camera", "camera-low", "screen")
VIDEO_MIME_TYPES = frozenset({"video/vp8", "video/h264"})
"A sending video m-line must offer at least one of these (VP8 is preferred, by the room)."


@dataclass(frozen=True)
class OfferedTrack:
    """One audio or video m-line of a publisher's offer."""

    index: int
    "Position among all m-lines."
    kind: Literal["audio", "video"]
    label: Label
    sends: bool
    "The publisher sends on it (direction sendrecv or sendonly)."


def inspect_offer(offer_sdp: str) -> list[OfferedTrack]:
    """Label the audio and video m-lines of a publish offer; ValueError if it is unusable."""
    try:
        description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    except Exception as error:  # aiortc's parser raises anything from ValueError to KeyError
        raise ValueError(f"the offer is not valid SDP: {error!r}") from error
    tracks: list[OfferedTrack] = []
    audio = video = 0
    for index, media in enumerate(description.media):
        sends = media.direction in ("sendrecv", "sendonly")
        if media.kind == "audio":
            if audio:
                raise ValueError("the offer has more than one audio m-line (microphone only)")
            audio += 1
            if sends:
                mimes = {codec.mimeType.lower() for codec in media.rtp.codecs}
                if "audio/opus" not in mimes:
                    raise ValueError("the offer's audio m-line does not offer Opus")
                uris = {extension.uri for extension in media.rtp.headerExtensions}
                if AUDIO_LEVEL_URI not in uris:
                    raise ValueError(
                        f"the offer's audio m-line lacks the audio-level extension {AUDIO_LEVEL_URI}"
                    )
            tracks.append(OfferedTrack(index, "audio", "audio", sends))
        elif media.kind == "video":
            if video >= len(VIDEO_LABELS):
                raise ValueError(
                    "the offer has more than three video m-lines (camera, camera-low, screen)"
                )
            if sends and not VIDEO_MIME_TYPES & {c.mimeType.lower() for c in media.rtp.codecs}:
                raise ValueError(
                    f"the offer's {VIDEO_LABELS[video]} m-line offers neither VP8 nor H.264"
                )
            tracks.append(OfferedTrack(index, "video", VIDEO_LABELS[video], sends))
            video += 1
        elif media.kind != "application":
            raise ValueError(f"the offer has an unsupported {media.kind!r} m-line")
    if not any(track.sends for track in tracks):
        raise ValueError("the offer sends no audio or video")
    return tracks


_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ .*)$", re.MULTILINE)
_CONNECTION = re.compile(r"^c=IN IP[46] (?!0\.0\.0\.0\b)\S+", re.MULTILINE)


def announce_host(sdp: str, host: str | None) -> str:
    """Rewrite the address of every ICE candidate (and real ``c=`` line) in ``sdp`` to ``host``.

    On EC2 the public address is not on any interface, so aioice gathers only the private
    one; with a 1:1 NAT the ports stay the same, and only the address needs announcing.
    Candidates of other interfaces keep their own ports, so they simply fail their checks.
    """
    if not host:
        return sdp
    family = "IP6" if ":" in host else "IP4"
    sdp = _CONNECTION.sub(f"c=IN {family} {host}", sdp)
    return _CANDIDATE.sub(lambda match: f"{match.group(1)}{host}{match.group(3)}", sdp)
