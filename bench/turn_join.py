"""Join time through TURN over TLS, against a direct join, in one run.

One command, bounded: it starts the twin with one media node and coturn on the root side of a
network namespace of its own (tests/integration/namespaces.py), a signed-in host page on the
root side that joins and publishes, then guests in a Chromium inside the namespace, timed as
bench/join_time.py times them (the click on "Join" to the first remote video frame
presented): first `--runs` joins straight to the node (direct UDP), then, once nftables inside
the namespace drops all UDP to the root side and TCP to coturn's plain port, `--runs` joins
whose only way to the node is TURN over TLS. Each join's selected candidate pair is read, so
a "direct" join that relayed (or the reverse) is an error, not a sample.

    PYTHONPATH=functions:. .venv/bin/python -m bench.turn_join [--runs 5]   (as root)

Writes bench/results/turn_join.json; prints p50 / max of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from bench.join_time import RECORD_PEERS, RUN_TIMEOUT_S, host_page, one_join, percentile
from infra.twin.server import LocalTwin, TwinOptions
from tests.integration.browser import CHROMIUM, MEDIA_ARGS
from tests.integration.namespaces import chromium_inside, fence, missing_tools, network_namespace

RESULTS = Path(__file__).resolve().parent / "results"
TOTAL_TIMEOUT_S = 600.0


async def _joins(browser: Browser, join_url: str, runs: int, path: str) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + TOTAL_TIMEOUT_S / 2
    for index in range(runs):
        if time.monotonic() > deadline:
            print(f"{path}: stopping early, the time limit passed", file=sys.stderr)
            break
        sample = await asyncio.wait_for(
            one_join(browser, join_url, index, init_script=RECORD_PEERS), RUN_TIMEOUT_S * 2
        )
        sample["path"] = path
        samples.append(sample)
        print(f"{path} join {index + 1}/{runs}: {sample['join_ms']:.0f} ms {sample['candidates']}")
        await asyncio.sleep(0.5)
    return samples


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    times = [s["join_ms"] for s in samples]
    if not times:
        return {"runs": 0}
    return {"runs": len(times), "p50_ms": percentile(times, 0.5), "max_ms": max(times)}


async def run(runs: int) -> dict[str, Any]:
    missing = missing_tools()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} (make system-deps, as root)")
    load_before = os.getloadavg()[0]
    data = Path(tempfile.mkdtemp(prefix="turn-join-"))
    with network_namespace() as ns:
        twin = LocalTwin.start(data, host=ns.host, options=TwinOptions(media_nodes=1, turn=True))
        try:
            assert twin.turn is not None
            launcher = chromium_inside(ns, CHROMIUM, twin.turn.ca_file, data / "home")
            # The twin is not on loopback, so not a secure context by itself: cameras need one.
            args = [*MEDIA_ARGS, f"--unsafely-treat-insecure-origin-as-secure={twin.base_url}"]
            async with async_playwright() as playwright:
                outside = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
                inside = await playwright.chromium.launch(
                    executable_path=str(launcher),
                    args=args,
                    env={**os.environ, "HOME": str(data / "home")},
                )
                try:
                    _host, join_url = await host_page(outside, twin.base_url)
                    direct = await _joins(inside, join_url, runs, "direct")
                    fence(ns, [twin.turn.addresses.port])
                    relayed = await _joins(inside, join_url, runs, "turn_tls")
                finally:
                    await inside.close()
                    await outside.close()
        finally:
            twin.stop()
    for sample in direct:
        assert all(c["type"] == "host" for c in sample["candidates"]), sample
    for sample in relayed:
        assert all(c == {"type": "relay", "relay": "tls"} for c in sample["candidates"]), sample
    summary = {"direct": _summary(direct), "turn_tls": _summary(relayed)}
    if direct and relayed:
        summary["p50_turn_over_direct"] = round(
            summary["turn_tls"]["p50_ms"] / summary["direct"]["p50_ms"], 2
        )
    return {
        "benchmark": "turn_join",
        "what": "click on Join to the first remote video frame: direct UDP, then TURN over TLS",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count() or 0,
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "summary": summary,
        "samples": [*direct, *relayed],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="joins of each kind (1-20)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be 1 to 20")
    result = asyncio.run(run(args.runs))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "turn_join.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    print(
        f"direct: p50 {s['direct'].get('p50_ms')} ms, max {s['direct'].get('max_ms')} ms; "
        f"TURN/TLS: p50 {s['turn_tls'].get('p50_ms')} ms, max {s['turn_tls'].get('max_ms')} ms; "
        f"ratio {s.get('p50_turn_over_direct')}; load average {result['machine']['load_average_1min']}"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
