"""SpeakerDetector: smoothed levels, hysteresis and a hold time against coughs."""

import pytest

from media_fleet.rtp.speaker import SpeakerDetector

PACKET = 0.02
QUIET = 127
TALK = 30
SOFT = 45
LOUD = 10
COUGH = 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(
    detector: SpeakerDetector[str], clock: FakeClock, seconds: float, levels: dict[str, int]
) -> list[tuple[float, str | None]]:
    """Feed one packet per source every 20 ms and update; return (time, active) samples."""
    samples = []
    for _ in range(round(seconds / PACKET)):
        clock.now += PACKET
        for source, level in levels.items():
            detector.add_level(source, level)
        samples.append((clock.now, detector.update()))
    return samples


def test_steady_speaker_wins() -> None:
    clock = FakeClock()
    detector: SpeakerDetector[str] = SpeakerDetector(clock=clock)
    samples = run(detector, clock, 2.0, {"alice": TALK, "bob": QUIET, "carol": 60})
    assert samples[-1][1] == "alice"
    assert all(active in (None, "alice") for _, active in samples)
    assert detector.loudest(2) == ["alice", "carol"]
    assert detector.loudness("bob") == 0.0


@pytest.mark.parametrize("speaker", [TALK, SOFT])
def test_a_200_ms_cough_does_not_switch(speaker: int) -> None:
    clock = FakeClock()
    detector: SpeakerDetector[str] = SpeakerDetector(clock=clock)
    run(detector, clock, 2.0, {"alice": speaker, "bob": QUIET})
    samples = run(detector, clock, 0.2, {"alice": speaker, "bob": COUGH})
    samples += run(detector, clock, 2.0, {"alice": speaker, "bob": QUIET})
    assert all(active == "alice" for _, active in samples)


def test_without_hysteresis_the_cough_would_switch() -> None:
    """The cough test above depends on margin and takeover time, not on smoothing alone."""
    clock = FakeClock()
    detector: SpeakerDetector[str] = SpeakerDetector(clock=clock, margin=0.0, takeover_time=0.0)
    run(detector, clock, 2.0, {"alice": SOFT, "bob": QUIET})
    samples = run(detector, clock, 0.2, {"alice": SOFT, "bob": COUGH})
    assert any(active == "bob" for _, active in samples)


def test_a_sustained_louder_speaker_switches_within_a_second() -> None:
    clock = FakeClock()
    detector: SpeakerDetector[str] = SpeakerDetector(clock=clock)
    run(detector, clock, 2.0, {"alice": TALK, "bob": QUIET})
    start = clock.now
    samples = run(detector, clock, 2.0, {"alice": TALK, "bob": LOUD})
    switched = next(t for t, active in samples if active == "bob")
    assert 0.3 <= switched - start <= 1.0
    assert all(active == "bob" for t, active in samples if t >= switched)


def test_turn_taking_switches_within_a_second() -> None:
    clock = FakeClock()
    detector: SpeakerDetector[str] = SpeakerDetector(clock=clock)
    run(detector, clock, 2.0, {"alice": TALK, "bob": QUIET})
    start = clock.now
    samples = run(detector, clock, 2.0, {"alice": QUIET, "bob": TALK})
    switched = next(t for t, active in samples if active == "bob")
    assert switched - start <= 1.0


def test_hold_time_keeps_a_new_speaker_for_a_second() -> None:
    switched = {}
    for hold in (0.0, 1.0):
        clock = FakeClock()
        detector: SpeakerDetector[str] = SpeakerDetector(clock=clock, min_hold=hold)
        run(detector, clock, 0.3, {"alice": TALK})
        assert detector.active == "alice"  # active since about 0.04 s
        samples = run(detector, clock, 1.5, {"alice": QUIET, "bob": TALK})
        switched[hold] = next(t for t, active in samples if active == "bob")
    assert switched[0.0] < 0.9
    assert switched[1.0] >= 1.02


def test_a_source_that_stops_sending_decays_to_silence() -> None:
    clock = FakeClock()
    detector: SpeakerDetector[str] = SpeakerDetector(clock=clock)
    run(detector, clock, 1.0, {"alice": TALK})
    loud = detector.loudness("alice")
    clock.now += 2.0
    assert loud > 30 and detector.loudness("alice") < 0.01 * loud
    detector.remove("alice")
    assert detector.update() is None and detector.loudest(3) == []
