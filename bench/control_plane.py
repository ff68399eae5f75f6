"""The control-plane benchmarks, one after the other, each in a fresh interpreter (each starts
its own twin; a process holds only one): Lambda import times, join storms, chat fan-out at
50, 200 and 1,000 connections (200 and 1,000 with a seeded roster). About 5 minutes on a
quiet machine; every step is bounded.

    PYTHONPATH=functions:. python -m bench.control_plane

Run it on a quiet machine (load average below 1): with other work on the two cores the
latencies grow several times over; only the ratios to each reference survive load.

Figures go to stdout and to bench/results/{import_times,join_storm,chat_fanout}.json; the
fan-out plot to bench/results/chat_fanout.png. See docs/bench-control-plane.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STEPS = (
    ("import times", ["bench.import_times", "--repeat", "3"], 120),
    ("join storms", ["bench.join_storm", "--step-seconds", "2"], 240),
    # Meetings of 200 and up get their roster seeded here (filling 200 by real joins is
    # 20,000 posts, minutes on a busy machine); the join path is the join storms' subject.
    (
        "chat fan-out",
        ["bench.chat_fanout", "--participants", "50", "200", "1000", "--seed-from", "200"],
        420,
    ),
)


def main() -> None:
    started = time.monotonic()
    failed = []
    for name, module_args, limit in STEPS:
        # The figures are latencies of one shared machine: say how busy it was.
        load = os.getloadavg()[0]
        print(f"\n=== {name} (python -m {' '.join(module_args)}), load {load:.1f} ===", flush=True)
        step_started = time.monotonic()
        # Its own process group: at the time limit the whole group goes (the twin's moto and
        # the client processes too), not only the benchmark's own interpreter.
        process = subprocess.Popen([sys.executable, "-m", *module_args], start_new_session=True)
        try:
            if process.wait(timeout=limit) != 0:
                failed.append(f"{name}: exit {process.returncode}")
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            failed.append(f"{name}: stopped after {limit} s")
        print(
            f"--- {name}: {time.monotonic() - step_started:.0f} s, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print(f"\nall three: {time.monotonic() - started:.0f} s")
    if failed:
        raise SystemExit("failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
