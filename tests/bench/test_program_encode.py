"""Keeps bench/program_encode.py working: one short, small configuration, really encoded."""

from __future__ import annotations

from bench.program_encode import LOW, encode_cost, source_cost


def test_one_second_of_the_low_rung_is_measured() -> None:
    measured = encode_cost(1.0, "ultrafast", (LOW,))
    assert measured["cpu_s"] > 0 and measured["wall_s"] > 0
    assert measured["bitrate_kbps"]["360p"] > 100, "the detailed picture fills the rung"
    assert source_cost(0.5) > 0
