"""Before and after, in one run: the same benchmarks on two checkouts, alternating.

    PYTHONPATH=functions:. .venv/bin/python -m bench.ab --before /tmp/before [--rounds 3]

`--before` is another checkout of this repository (`git worktree add /tmp/before <rev>`); the
after side is this one, or `--after`. Each round runs, on each side (the order alternating between rounds so
that drift on the machine lands on both):

- the SFU at a 10 x 10 meeting (`bench.sfu_forwarding --participants 10`): the node's CPU per
  forwarded packet;
- the SFU at a 1 -> 50 webinar (`bench.sfu_compare --targets ours --scenarios webinar
  --quick`): the same figure;
- chat fan-out to 50 connections in the twin (`bench.chat_fanout --participants 50`): p50 and
  p99 from the sender to every receiver.

Each side runs with its own tree first on PYTHONPATH and the same interpreter (the checkouts
must not differ in what they install). The run-to-run spread of each figure on one side is
its noise; the report gives it next to the after/before ratio. Writes
bench/results/before_after.json. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
RESULTS = HERE / "bench" / "results"
STEP_TIMEOUT_SECONDS = 600


def _run(tree: Path, module: str, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'functions'}:{tree}"}
    subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tree,
        env=env,
        check=True,
        timeout=STEP_TIMEOUT_SECONDS,
        stdout=subprocess.DEVNULL,
    )


def meeting_cpu(tree: Path, scratch: Path) -> float:
    out = scratch / "meeting.json"
    _run(tree, "bench.sfu_forwarding", ["--participants", "10", "--out", str(out)])
    return float(json.loads(out.read_text())["cpu_us_per_forwarded_packet"])


def webinar_cpu(tree: Path, scratch: Path) -> float:
    out = scratch / "webinar.json"
    _run(
        tree,
        "bench.sfu_compare",
        ["--targets", "ours", "--scenarios", "webinar", "--quick", "--out", str(out)],
    )
    step = json.loads(out.read_text())["results"]["webinar"]["ours"]["steps"][0]
    return float(step["cpu_us_per_packet"])


def chat_fanout(tree: Path, _scratch: Path) -> tuple[float, float]:
    # chat_fanout writes its figures into its own tree's bench/results/.
    _run(tree, "bench.chat_fanout", ["--participants", "50"])
    result = json.loads((tree / "bench" / "results" / "chat_fanout.json").read_text())
    figures = result["results"][0]["ours_ms"]
    return float(figures["p50"]), float(figures["p99"])


def one_side(tree: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        p50, p99 = chat_fanout(tree, Path(scratch))
        return {
            "meeting_10x10_us_per_packet": meeting_cpu(tree, Path(scratch)),
            "webinar_1x50_us_per_packet": webinar_cpu(tree, Path(scratch)),
            "chat_fanout_50_p50_ms": p50,
            "chat_fanout_50_p99_ms": p99,
        }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key in rounds[0]["before"]:
        before = [r["before"][key] for r in rounds]
        after = [r["after"][key] for r in rounds]
        b, a = statistics.median(before), statistics.median(after)
        summary[key] = {
            "before_median": round(b, 2),
            "after_median": round(a, 2),
            "after_over_before": round(a / b, 3) if b else None,
            # The spread of one side's runs, relative to its median: the noise.
            "noise_before": round((max(before) - min(before)) / b, 3) if b else None,
            "noise_after": round((max(after) - min(after)) / a, 3) if a else None,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument(
        "--after", type=Path, default=HERE, help="the checkout measured against it (this one)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    before, after = args.before.resolve(), args.after.resolve()
    checkouts = (before / "bench" / "sfu_forwarding.py", after / "bench" / "sfu_forwarding.py")
    if not all(p.exists() for p in checkouts) or not 1 <= args.rounds <= 5:
        raise SystemExit("--before must be a checkout of this repository; rounds 1..5")
    started, load = time.monotonic(), os.getloadavg()
    rounds = []
    for i in range(args.rounds):
        sides = [("before", before), ("after", after)]
        if i % 2:
            sides.reverse()
        figures = {name: one_side(tree) for name, tree in sides}
        rounds.append(figures)
        print(json.dumps(figures), flush=True)
    summary = summarize(rounds)
    report = {
        "before": str(before),
        "after": str(after),
        "rounds": rounds,
        "summary": summary,
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - started),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "before_after.json").write_text(json.dumps(report, indent=2) + "\n")
    for key, s in summary.items():
        print(
            f"{key:32} before {s['before_median']:8.2f}  after {s['after_median']:8.2f}  "
            f"ratio {s['after_over_before']}  noise {s['noise_before']}/{s['noise_after']}"
        )


if __name__ == "__main__":
    main()
