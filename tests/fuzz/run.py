"""Run the fuzz targets: a bounded pass (``make test``) or a timed one (``make fuzz``).

    .venv/bin/python -m tests.fuzz.run --seconds 600            # every target, 10 min each
    .venv/bin/python -m tests.fuzz.run --runs 50000 wire vp8    # some targets, by count

Each target runs in its own process (atheris instruments imports and exits the process when
done). Inputs found interesting are written to ``--work``/corpus/<target>, never to the
committed seeds in tests/fuzz/corpus/<target>, which are read as a second corpus directory;
a crash is written to ``--work``/crashes/ and the command exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
DICTS = HERE / "dicts"

TARGETS = ("vp8", "h264", "rtp_packet", "rtcp", "rtx_history", "slot_header", "wire")

# Bodies go up to 64 KiB, but the cases that matter (a 4,300-digit integer, nesting deeper
# than the recursion limit, a real SDP offer) fit in 16 KiB, and smaller inputs mutate faster.
MAX_LEN = {"wire": 16384}
DEFAULT_MAX_LEN = 2048
# A single input taking this long is a hang (an unbounded loop), reported as a crash.
INPUT_TIMEOUT_SECONDS = 10
RSS_LIMIT_MB = 1024


@dataclass
class Outcome:
    target: str
    returncode: int
    runs: int
    seconds: float
    output: str


def command(
    target: str,
    work: Path,
    *,
    runs: int | None = None,
    seconds: int | None = None,
    seed: int | None = None,
) -> list[str]:
    if target not in TARGETS:
        raise ValueError(f"unknown fuzz target {target!r}; one of {', '.join(TARGETS)}")
    new_inputs = work / "corpus" / target
    crashes = work / "crashes"
    new_inputs.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        f"tests.fuzz.fuzz_{target}",
        f"-max_len={MAX_LEN.get(target, DEFAULT_MAX_LEN)}",
        f"-timeout={INPUT_TIMEOUT_SECONDS}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={crashes}/{target}-",
        "-print_final_stats=1",
    ]
    if runs is not None:
        argv.append(f"-runs={runs}")
    if seconds is not None:
        argv.append(f"-max_total_time={seconds}")
    if seed is not None:
        argv.append(f"-seed={seed}")
    dictionary = DICTS / f"{target}.dict"
    if dictionary.exists():
        argv.append(f"-dict={dictionary}")
    # the first directory receives new inputs; the committed seeds are only read
    return [*argv, str(new_inputs), str(CORPUS / target)]


def environment() -> dict[str, str]:
    """PYTHONPATH as pytest's config sets it, so the target imports what the tests import."""
    env = dict(os.environ)
    paths = [str(ROOT / "functions"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run(target: str, work: Path, *, timeout: float, **options: int | None) -> Outcome:
    started = time.monotonic()
    try:
        done = subprocess.run(
            command(target, work, **options),
            cwd=ROOT,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        returncode, output = done.returncode, done.stdout
    except subprocess.TimeoutExpired as expired:
        raw = expired.output or ""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        returncode, output = -1, text + f"\n(no result after {timeout:.0f} s: stopped)"
    match = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    return Outcome(
        target,
        returncode,
        int(match.group(1)) if match else 0,
        time.monotonic() - started,
        output,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("targets", nargs="*", help=f"default: all of {', '.join(TARGETS)}")
    bound = parser.add_mutually_exclusive_group(required=True)
    bound.add_argument("--runs", type=int, help="inputs per target")
    bound.add_argument("--seconds", type=int, help="wall time per target")
    parser.add_argument("--seed", type=int, help="libFuzzer's random seed (default: random)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "fuzz")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")

    failed = []
    for target in args.targets or TARGETS:
        # a timed run stops itself; the subprocess timeout only guards against a stuck one
        limit = (args.seconds or 0) + 120 if args.seconds else 600
        outcome = run(
            target, args.work, timeout=limit, runs=args.runs, seconds=args.seconds, seed=args.seed
        )
        verdict = "ok" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
        print(f"{target}: {outcome.runs} runs in {outcome.seconds:.1f} s: {verdict}", flush=True)
        if outcome.returncode != 0:
            failed.append(target)
            print(outcome.output[-6000:], file=sys.stderr)
    if failed:
        print(f"crashes under {args.work / 'crashes'}: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
