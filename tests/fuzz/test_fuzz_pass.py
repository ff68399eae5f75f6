"""A short, bounded pass of every fuzz target (``make test``); ``make fuzz`` is the long one.

Each target runs in its own process (atheris instruments imports and ends the process), for
a fixed number of inputs from a fixed seed, so a failure reproduces. The test fails if the
target finds a crash (an exception its contract does not allow, a failed round trip, an
input that takes over ``INPUT_TIMEOUT_SECONDS``), and also if it stops short of its runs.
"""

from __future__ import annotations

import pytest

from tests.fuzz.run import TARGETS, run

SEED = 20_261_207
# Inputs per target: 1-4 s each on a quiet 2-core machine, the wire parser (larger
# inputs, and the pure-Python JSON scanner run for coverage) a little more.
RUNS = {target: 80_000 for target in TARGETS} | {"wire": 40_000}
TIMEOUT_SECONDS = 150.0


@pytest.mark.parametrize("target", TARGETS)
def test_bounded_fuzz_pass(target: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp(f"fuzz-{target}")
    outcome = run(target, work, timeout=TIMEOUT_SECONDS, runs=RUNS[target], seed=SEED)
    crashes = sorted(p.name for p in (work / "crashes").iterdir())
    report = f"{target}: exit {outcome.returncode}, crashes {crashes}\n{outcome.output[-6000:]}"
    assert outcome.returncode == 0, report
    assert crashes == [], report
    assert outcome.runs == RUNS[target], report
