"""The packager writes a stream PyAV reads back: both tracks, the right durations, keyframes
at segment starts, parts that add up to their segments, and a playlist that names them all."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from egress.hls.cmaf import ChunkSplitter, CmafError
from egress.hls.live_edge import parse_live_edge
from egress.hls.packager import PackagerSettings, ProgramPackager
from tests.egress.conftest import small_program, small_settings

DURATION = 2.5  # seconds: one whole 2 s segment and a short last one


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ProgramPackager]:
    root = tmp_path_factory.mktemp("store")
    packager = ProgramPackager(root, "demo", small_program(DURATION), small_settings())
    assert packager.run() == 75
    return root, packager


def read_back(path: Path) -> dict[str, list[av.Packet]]:
    packets: dict[str, list[av.Packet]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                packets[packet.stream.type].append(packet)
    return packets


@pytest.mark.parametrize("rendition", ["360p", "180p"])
def test_segments_play_back_with_both_tracks(
    packaged: tuple[Path, ProgramPackager], rendition: str, tmp_path: Path
) -> None:
    root, _ = packaged
    folder = root / "demo" / rendition
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(
        (folder / "init.mp4").read_bytes()
        + (folder / "seg0.m4s").read_bytes()
        + (folder / "seg1.m4s").read_bytes()
    )
    with av.open(str(whole)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert video.codec_context.height == int(rendition[:-1])
    packets = read_back(whole)
    video_packets = packets["video"]
    assert len(video_packets) == 75, "every frame of 2.5 s at 30 fps"
    assert [i for i, p in enumerate(video_packets) if p.is_keyframe] == [0, 60]
    last = video_packets[-1]
    assert last.pts is not None and last.time_base is not None
    assert float(last.pts * last.time_base) == pytest.approx(74 / 30, abs=1e-3)
    audio_end = packets["audio"][-1]
    assert audio_end.pts is not None and audio_end.time_base is not None
    assert float(audio_end.pts * audio_end.time_base) == pytest.approx(DURATION, abs=0.1)


def test_parts_concatenate_to_their_segment_and_playlist_names_them(
    packaged: tuple[Path, ProgramPackager],
) -> None:
    root, packager = packaged
    folder = root / "demo" / "360p"
    parts = [p for p in packager.published if p.rendition == "360p"]
    assert [(p.msn, p.index) for p in parts] == [(0, i) for i in range(6)] + [(1, 0), (1, 1)]
    assert [p.independent for p in parts] == [True, *[False] * 5, True, False]
    assert all(p.duration == pytest.approx(1 / 3) for p in parts[:7])
    assert parts[7].duration == pytest.approx(1 / 6)
    assert (
        b"".join((folder / f"part0.{i}.m4s").read_bytes() for i in range(6))
        == (folder / "seg0.m4s").read_bytes()
    )
    text = (folder / "index.m3u8").read_text()
    edge = parse_live_edge(text)
    assert (edge.last_complete_msn, edge.ended) == (1, True)
    assert "#EXTINF:2.00000,\nseg0.m4s" in text and "#EXTINF:0.50000,\nseg1.m4s" in text
    assert not list(folder.glob(".*")), "no temporary file is left behind"
    multivariant = (root / "demo" / "index.m3u8").read_text()
    assert "360p/index.m3u8" in multivariant and "180p/index.m3u8" in multivariant
    assert 'CODECS="avc1.64' in multivariant  # High profile, from the encoder's SPS


def test_bitrate_stays_under_the_advertised_bandwidth(
    packaged: tuple[Path, ProgramPackager],
) -> None:
    root, packager = packaged
    for encoder in packager.renditions:
        segment = root / "demo" / encoder.rendition.name / "seg0.m4s"
        bits_per_second = segment.stat().st_size * 8 / 2.0
        assert 0 < bits_per_second <= encoder.variant.bandwidth


@pytest.mark.parametrize(
    "changes",
    [
        {"part_duration": 0.1},
        {"part_duration": 0.31},  # not whole frames at 30 fps
        {"segment_duration": 2.1},  # not a whole number of parts
        {"segment_duration": 10.0},
        {"ladder": ()},
    ],
)
def test_settings_the_rules_cannot_hold_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PackagerSettings(**changes).check(30)  # type: ignore[arg-type]


def test_splitter_refuses_what_is_not_fragmented_mp4() -> None:
    with pytest.raises(CmafError, match="size"):
        ChunkSplitter().write(b"\x00\x00\x00\x02moof")
    with pytest.raises(CmafError, match="before the init"):
        ChunkSplitter().write(b"\x00\x00\x00\x08moof")
