"""Every committed corpus input, replayed through its target's contract as a plain test.

A crash reproducer copied into tests/fuzz/corpus/<target>/ (README.md) is from then on a
regression test here, named after its file. The ``crash-aiortc-*`` reproducers are defects of
aiortc 1.16.0 itself, which the node guards rather than fixes (``seams.refuse_malformed_packets``
turns their ``struct.error`` into ValueError): besides the contract, each is checked to give
ValueError under the guard, and, without it, to still give aiortc's ``struct.error``. When an
aiortc upgrade fixes one, that last test fails: drop its part of the guard.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Callable
from pathlib import Path

import aiortc.rtcrtpsender
import aiortc.rtp
import pytest
from aiortc.rtp import RTCP_PSFB_APP, RtcpPacket, RtcpPsfbPacket, RtpPacket

from media_fleet.rtc import seams
from tests.fuzz.fuzz_rtp_packet import split
from tests.fuzz.run import CORPUS, TARGETS

INPUTS = sorted(
    (target, path) for target in TARGETS for path in (CORPUS / target).iterdir() if path.is_file()
)


def test_every_target_has_seeds_and_every_corpus_a_target() -> None:
    assert {path.name for path in CORPUS.iterdir()} == set(TARGETS)
    assert all(any((CORPUS / target).iterdir()) for target in TARGETS)


@pytest.mark.parametrize(("target", "path"), INPUTS, ids=[f"{t}/{p.name}" for t, p in INPUTS])
def test_corpus_input_keeps_the_contract(target: str, path: Path) -> None:
    module = importlib.import_module(f"tests.fuzz.fuzz_{target}")
    module.check(path.read_bytes())


AIORTC = [(t, p) for t, p in INPUTS if p.name.startswith("crash-aiortc-")]
AIORTC_IDS = [f"{t}/{p.name}" for t, p in AIORTC]


def defective_parses(target: str, data: bytes) -> dict[str, Callable[[], object]]:
    """The aiortc parses that a ``crash-aiortc-*`` input of ``target`` reaches, by caller.

    Each looks aiortc's function up when called, as aiortc does, so that inside the guard it
    is the guarded one.
    """
    if target == "rtp_packet":
        split_input = split(data)
        assert split_input is not None
        extensions, raw = split_input
        return {"RtpPacket.parse": lambda: RtpPacket.parse(raw, extensions)}
    if target == "rtcp":
        (packet,) = RtcpPacket.parse(data)
        assert isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP, packet
        fci = packet.fci
        return {
            "RtpRouter's unpack_remb_fci": lambda: aiortc.rtp.unpack_remb_fci(fci),
            "RTCRtpSender's unpack_remb_fci": lambda: aiortc.rtcrtpsender.unpack_remb_fci(fci),
        }
    pytest.fail(f"no aiortc defect known for target {target}")


def test_both_aiortc_defects_have_reproducers() -> None:
    assert {t for t, _ in AIORTC} == {"rtp_packet", "rtcp"}, AIORTC


@pytest.mark.parametrize(("target", "path"), AIORTC, ids=AIORTC_IDS)
def test_aiortc_crash_is_a_value_error_under_the_guard(target: str, path: Path) -> None:
    parses = defective_parses(target, path.read_bytes())
    with seams.refuse_malformed_packets():
        for caller, parse in parses.items():
            with pytest.raises(ValueError) as refused:
                parse()
            # the guard's ValueError, for aiortc's struct.error: not some earlier check's
            assert isinstance(refused.value.__cause__, struct.error), (caller, refused.value)


@pytest.mark.parametrize(("target", "path"), AIORTC, ids=AIORTC_IDS)
def test_aiortc_still_has_the_defect(target: str, path: Path) -> None:
    """Without the guard, aiortc 1.16.0 raises ``struct.error`` on each; a release that does
    not has fixed the defect, and ``seams.refuse_malformed_packets`` can drop its part for it."""
    for caller, parse in defective_parses(target, path.read_bytes()).items():
        try:
            parse()
        except struct.error:
            continue
        except ValueError:
            pass
        pytest.fail(
            f"aiortc {aiortc.__version__} no longer raises struct.error for {path.name} "
            f"({caller}): it fixed the defect, so seams.refuse_malformed_packets() need not "
            "guard it (keep the reproducer: the contract test still replays it)"
        )
