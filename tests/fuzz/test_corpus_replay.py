"""Every committed corpus input, replayed through its target's contract as a plain test.

A crash reproducer copied into tests/fuzz/corpus/<target>/ (README.md) is from then on a
regression test here, named after its file. The ``known-aiortc-*`` reproducers must still
show aiortc's defect: when an aiortc upgrade or a guard in seams.py fixes one, its test
here fails, so the targets' tolerance for it (aiortc_defects.py) gets removed.
"""

from __future__ import annotations

import importlib
import struct
from pathlib import Path

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RtcpPacket, RtcpPsfbPacket, RtpPacket, unpack_remb_fci

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


KNOWN = [(t, p) for t, p in INPUTS if p.name.startswith("known-aiortc-")]


@pytest.mark.parametrize(("target", "path"), KNOWN, ids=[f"{t}/{p.name}" for t, p in KNOWN])
def test_known_aiortc_defect_is_still_there(target: str, path: Path) -> None:
    data = path.read_bytes()
    with pytest.raises(struct.error):
        if target == "rtp_packet":
            split_input = split(data)
            assert split_input is not None
            RtpPacket.parse(split_input[1], split_input[0])
        elif target == "rtcp":
            (packet,) = RtcpPacket.parse(data)
            assert isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP
            unpack_remb_fci(packet.fci)
        else:
            pytest.fail(f"no known aiortc defect for target {target}")
