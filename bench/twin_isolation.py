"""What the twin's DynamoDB isolation costs: join storms and chat fan-out with it on and off.

The twin's moto server serves DynamoDB one request at a time (infra/twin/moto_server.py,
`_install_isolation`), as DynamoDB's transactions are serializable. moto alone is faster and
wrong under concurrency. This measures, in one run, the two figures issue 9 asks for, with
isolation on (the twin as it ships) and off (`TWIN_DYNAMODB_ISOLATION=off`, for this
measurement only), alternating the variants so drift on the machine lands on both:

- the join rate the twin holds into one meeting (no errors, p99 within the bound), from
  bench/join_storm.py's stepped storm;
- chat fan-out to 50 connections, sender to every receiver, p50 and p99, from
  bench/chat_fanout.py.

    PYTHONPATH=functions:. .venv/bin/python -m bench.twin_isolation [--rounds 2]

Writes bench/results/twin_isolation.json. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import chat_fanout, join_storm
from bench.invocation_timers import InvocationTimers
from infra.twin import moto_server

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("on", "off")
FANOUT_PARTICIPANTS = 50
FANOUT_MESSAGES = 20
# Fine steps around where the twin tops out (about 10 joins/s on 2 cores): coarse ones hide
# a difference between the variants inside one step.
JOIN_RATES = (4, 6, 8, 10, 12, 14, 16, 20)


def _with_isolation(variant: str) -> None:
    # The moto server is a child of each twin: it reads this when the twin starts it.
    os.environ[moto_server.ISOLATION_VARIABLE] = variant


def measure_round(variant: str, timers: InvocationTimers, step_seconds: float) -> dict[str, Any]:
    _with_isolation(variant)
    bound_ms = 1000.0
    plan: dict[str, Any] = {
        "rates": list(JOIN_RATES),
        "step_seconds": step_seconds,
        "p99_bound_ms": bound_ms,
        "pause_seconds": 1.0,
        "storm_limit_seconds": 120.0,
        "lambda_processes": 0,
    }
    steps = join_storm.run_storm(f"isolation {variant}", False, 1, plan, timers)
    held = join_storm.rate_held(steps, bound_ms)
    fanout = chat_fanout.measure(FANOUT_PARTICIPANTS, FANOUT_MESSAGES, 10_000, 0, timers)
    return {
        "isolation": variant,
        "joins_held_per_s": held["rate"] if held else 0,
        "joins_achieved_per_s": held["achieved_per_s"] if held else 0.0,
        "join_p50_ms": held["p50_ms"] if held else None,
        "fanout_p50_ms": fanout["ours_ms"]["p50"],
        "fanout_p99_ms": fanout["ours_ms"]["p99"],
        "fanout_missing": fanout["missing"],
    }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    by = {v: [r for r in rounds if r["isolation"] == v] for v in VARIANTS}

    def median(variant: str, key: str) -> float:
        return float(statistics.median(r[key] for r in by[variant]))

    keys = ("joins_held_per_s", "joins_achieved_per_s", "fanout_p50_ms", "fanout_p99_ms")
    medians = {v: {k: median(v, k) for k in keys} for v in VARIANTS}
    ratios = {
        k: round(medians["on"][k] / medians["off"][k], 2) if medians["off"][k] else None
        for k in keys
    }
    return {"median": medians, "on_over_off": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant (1..5)")
    parser.add_argument("--step-seconds", type=float, default=3.0)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 5 or not 1 <= args.step_seconds <= 10:
        raise SystemExit("rounds must be 1..5 and step seconds 1..10")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    timers = InvocationTimers()
    timers.install()
    started = time.monotonic()
    load_before = os.getloadavg()
    rounds: list[dict[str, Any]] = []
    log_file = Path(tempfile.mkdtemp(prefix="bench-isolation-log-")) / "handlers.log"
    previous = os.environ.get(moto_server.ISOLATION_VARIABLE)
    with log_file.open("w") as handler_output:
        sys.stdout = handler_output
        try:
            for i in range(args.rounds):
                # Alternate which goes first, so a trend on the machine is shared.
                order = VARIANTS if i % 2 == 0 else tuple(reversed(VARIANTS))
                for variant in order:
                    result = measure_round(variant, timers, args.step_seconds)
                    rounds.append(result)
                    print(json.dumps(result), file=sys.__stdout__, flush=True)
        finally:
            sys.stdout = sys.__stdout__
            timers.uninstall()
            if previous is None:
                os.environ.pop(moto_server.ISOLATION_VARIABLE, None)
            else:
                os.environ[moto_server.ISOLATION_VARIABLE] = previous
    summary = summarize(rounds)
    report = {
        "rounds": rounds,
        **summary,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - started),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "twin_isolation.json").write_text(json.dumps(report, indent=2) + "\n")
    med = summary["median"]
    print(f"\n{'':24} {'isolated':>10} {'unisolated':>11} {'ratio':>7}")
    for key, label in (
        ("joins_held_per_s", "joins held (/s)"),
        ("joins_achieved_per_s", "joins achieved (/s)"),
        ("fanout_p50_ms", "fan-out 50, p50 (ms)"),
        ("fanout_p99_ms", "fan-out 50, p99 (ms)"),
    ):
        print(
            f"{label:24} {med['on'][key]:10.1f} {med['off'][key]:11.1f} "
            f"{summary['on_over_off'][key]!s:>7}"
        )
    print(f"(handler output in {log_file}; {report['seconds']} s)")


if __name__ == "__main__":
    main()
