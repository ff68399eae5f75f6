"""The LL-HLS playlist rules of egress/hls/playlist.py and the live edge the origin reads back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from egress.hls.live_edge import (
    DeliveryDirectives,
    DirectiveError,
    check_not_too_far,
    is_satisfied,
    parse_delivery_directives,
    parse_live_edge,
)
from egress.hls.playlist import MediaPlaylist, MultivariantPlaylist, Part, PlaylistError, Variant

START = datetime(2026, 12, 8, 1, 0, 0, tzinfo=UTC)
PART = 10 / 30  # 10 frames at 30 fps: 0.333333 s
PARTS_PER_SEGMENT = 6


def part_uri(msn: int, index: int) -> str:
    return f"part{msn}.{index}.m4s"


def new_playlist(window_segments: int = 4) -> MediaPlaylist:
    return MediaPlaylist(
        init_uri="init.mp4",
        target_duration=2,
        part_target=PART,
        part_uri=part_uri,
        window_segments=window_segments,
    )


def feed(playlist: MediaPlaylist, segments: int, extra_parts: int = 0) -> None:
    for msn in range(segments):
        for index in range(PARTS_PER_SEGMENT):
            when = START + timedelta(seconds=msn * 2 + index * PART)
            position = playlist.add_part(
                Part(part_uri(msn, index), PART, index == 0), program_date_time=when
            )
            assert position == (msn, index)
        playlist.close_segment(f"seg{msn}.m4s")
    for index in range(extra_parts):
        playlist.add_part(
            Part(part_uri(segments, index), PART, index == 0),
            program_date_time=START + timedelta(seconds=segments * 2),
        )


def tag_value(text: str, tag: str) -> str:
    match = re.search(rf"^#{tag}:(.*)$", text, re.MULTILINE)
    assert match, f"{tag} missing"
    return match.group(1)


def attributes(value: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', value)}


def test_header_tags_and_server_control() -> None:
    playlist = new_playlist()
    feed(playlist, 2, extra_parts=2)
    text = playlist.render()
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert tag_value(text, "EXT-X-VERSION") == "6"
    assert tag_value(text, "EXT-X-TARGETDURATION") == "2"
    part_target = float(attributes(tag_value(text, "EXT-X-PART-INF"))["PART-TARGET"])
    assert part_target >= PART, "every part must fit in the rendered part target"
    control = attributes(tag_value(text, "EXT-X-SERVER-CONTROL"))
    assert control["CAN-BLOCK-RELOAD"] == "YES"
    assert float(control["PART-HOLD-BACK"]) >= round(3 * part_target, 5)  # decimal, not float
    assert float(control["HOLD-BACK"]) >= 3 * 2
    assert tag_value(text, "EXT-X-MEDIA-SEQUENCE") == "0"
    assert tag_value(text, "EXT-X-MAP") == 'URI="init.mp4"'
    assert tag_value(text, "EXT-X-PROGRAM-DATE-TIME") == "2026-12-08T01:00:00.000Z"
    for line in lines:
        if line.startswith("#EXTINF:"):
            assert round(float(line[8:].rstrip(","))) <= 2
        if line.startswith("#EXT-X-PART:"):
            assert float(attributes(line[12:])["DURATION"]) <= part_target


def test_parts_independent_on_keyframes_and_preload_hint_names_next_part() -> None:
    playlist = new_playlist()
    feed(playlist, 1, extra_parts=3)
    text = playlist.render()
    parts = [attributes(line[12:]) for line in text.splitlines() if line.startswith("#EXT-X-PART:")]
    assert [p["URI"] for p in parts[-3:]] == ["part1.0.m4s", "part1.1.m4s", "part1.2.m4s"]
    assert [p.get("INDEPENDENT") for p in parts[-3:]] == ["YES", None, None]
    assert text.splitlines()[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part1.3.m4s"'
    # Right after a segment closes, the hint names the next part index of the next segment.
    closed = new_playlist()
    feed(closed, 1)
    assert closed.render().splitlines()[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part1.0.m4s"'


def test_window_is_bounded_and_keeps_three_target_durations() -> None:
    playlist = new_playlist(window_segments=4)
    feed(playlist, 12, extra_parts=1)
    text = playlist.render()
    assert text.count("#EXTINF:") == 4
    assert tag_value(text, "EXT-X-MEDIA-SEQUENCE") == "8"
    assert "seg7.m4s" not in text and "seg8.m4s" in text
    # Parts only for segments within three target durations (6 s) of the edge.
    assert "part8.0.m4s" not in text and "part9.0.m4s" in text
    # A window of one segment still keeps 3 target durations (RFC 8216 6.2.2).
    short = new_playlist(window_segments=1)
    feed(short, 8)
    assert short.render().count("#EXTINF:") == 3


def test_refuses_rule_breaking_parts_and_segments_unchanged() -> None:
    playlist = new_playlist()
    with pytest.raises(PlaylistError, match="independent"):
        playlist.add_part(Part("p", PART, False), program_date_time=START)
    with pytest.raises(PlaylistError, match="part duration"):
        playlist.add_part(Part("p", 0.5, True), program_date_time=START)
    with pytest.raises(PlaylistError, match="no open segment"):
        playlist.close_segment("s")
    before = playlist.render()
    playlist.add_part(Part("a", 0.2, True), program_date_time=START)
    with pytest.raises(PlaylistError, match="85 %"):
        playlist.add_part(Part("b", PART, False), program_date_time=START)
    long = new_playlist()
    for index in range(8):
        long.add_part(Part(f"p{index}", PART, index == 0), program_date_time=START)
    with pytest.raises(PlaylistError, match="exceeds the target duration"):
        long.close_segment("s")
    assert playlist.render().count('URI="a"') == 1, "the refused part left nothing behind"
    assert 'URI="a"' not in before


def test_ended_playlist_has_endlist_and_no_hint() -> None:
    playlist = new_playlist()
    feed(playlist, 2)
    playlist.end()
    text = playlist.render()
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "PRELOAD-HINT" not in text
    assert parse_live_edge(text).ended


def test_multivariant_lists_every_rendition() -> None:
    text = MultivariantPlaylist(
        (
            Variant("360p/index.m3u8", 900_000, "avc1.64001e,mp4a.40.2", 640, 360, 30),
            Variant("720p/index.m3u8", 2_800_000, "avc1.64001f,mp4a.40.2", 1280, 720, 30),
        )
    ).render()
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    infs = [
        attributes(line[18:]) for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF:")
    ]
    assert [inf["RESOLUTION"] for inf in infs] == ["1280x720", "640x360"]
    assert infs[0]["CODECS"] == "avc1.64001f,mp4a.40.2"
    assert text.splitlines()[-1] == "360p/index.m3u8"
    with pytest.raises(PlaylistError):
        MultivariantPlaylist(()).render()


def test_live_edge_read_back_from_the_rendered_playlist() -> None:
    playlist = new_playlist()
    feed(playlist, 3, extra_parts=2)
    edge = parse_live_edge(playlist.render())
    assert (edge.last_complete_msn, edge.last_part, edge.target_duration) == (2, (3, 1), 2)
    feed_closed = new_playlist()
    feed(feed_closed, 3)
    assert parse_live_edge(feed_closed.render()).last_part == (2, 5)
    assert edge.advance_part_limit == 9  # 3 / 1/3 s, though rendered as 0.33334


def test_blocking_directives_satisfied_and_refused() -> None:
    playlist = new_playlist()
    feed(playlist, 3, extra_parts=2)  # segments 0-2 complete, parts 3.0 and 3.1
    edge = parse_live_edge(playlist.render())
    assert is_satisfied(DeliveryDirectives(2), edge)
    assert not is_satisfied(DeliveryDirectives(3), edge)
    assert is_satisfied(DeliveryDirectives(3, 1), edge)
    assert not is_satisfied(DeliveryDirectives(3, 2), edge)
    assert is_satisfied(DeliveryDirectives(2, 9), edge), "segment 2 ended before part 9"
    check_not_too_far(DeliveryDirectives(5), edge)
    with pytest.raises(DirectiveError, match="two segments"):
        check_not_too_far(DeliveryDirectives(6), edge)
    check_not_too_far(DeliveryDirectives(3, 10), edge)  # 9 past the last part, 3.1
    with pytest.raises(DirectiveError, match="parts past"):
        check_not_too_far(DeliveryDirectives(3, 11), edge)
    check_not_too_far(DeliveryDirectives(4, 8), edge)
    with pytest.raises(DirectiveError, match="parts past"):
        check_not_too_far(DeliveryDirectives(4, 9), edge)


@pytest.mark.parametrize(
    "query",
    [
        {"_HLS_part": "1"},
        {"_HLS_msn": "-1"},
        {"_HLS_msn": "1.5"},
        {"_HLS_msn": "abc"},
        {"_HLS_msn": "9" * 20},
        {"_HLS_msn": "1", "_HLS_part": ""},
        {"_HLS_msn": "\u0661"},  # an Arabic-Indic digit: isdigit() is true, ASCII it is not
    ],
)
def test_malformed_directives_refused(query: dict[str, str]) -> None:
    with pytest.raises(DirectiveError):
        parse_delivery_directives(query)


def test_plain_and_valid_directives_parsed() -> None:
    assert parse_delivery_directives({}) is None
    assert parse_delivery_directives({"_HLS_msn": "7", "_HLS_part": "2"}) == DeliveryDirectives(
        7, 2
    )
