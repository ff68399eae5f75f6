"""The control-plane benchmarks, one after the other, each in a fresh interpreter (each starts
its own twin; a process holds only one): Lambda import times, join storms, chat fan-out at
50, 200 and 1,000 connections. About 5 minutes on a quiet machine; every step is bounded.

    PYTHONPATH=functions:. python -m bench.control_plane

Figures go to stdout and to bench/results/{import_times,join_storm,chat_fanout}.json; the
fan-out plot to bench/results/chat_fanout.png. See docs/bench-control-plane.md.
"""

from __future__ import annotations

import subprocess
import sys
import time

STEPS = (
    ("import times", ["bench.import_times", "--repeat", "3"], 120),
    ("join storms", ["bench.join_storm", "--step-seconds", "2"], 240),
    ("chat fan-out", ["bench.chat_fanout", "--participants", "50", "200", "1000"], 420),
)


def main() -> None:
    started = time.monotonic()
    failed = []
    for name, module_args, limit in STEPS:
        print(f"\n=== {name} (python -m {' '.join(module_args)}) ===", flush=True)
        step_started = time.monotonic()
        try:
            result = subprocess.run([sys.executable, "-m", *module_args], timeout=limit)
            if result.returncode != 0:
                failed.append(f"{name}: exit {result.returncode}")
        except subprocess.TimeoutExpired:
            failed.append(f"{name}: stopped after {limit} s")
        print(f"--- {name}: {time.monotonic() - step_started:.0f} s", flush=True)
    print(f"\nall three: {time.monotonic() - started:.0f} s")
    if failed:
        raise SystemExit("failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
