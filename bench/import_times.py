"""Import time of each Lambda handler module, as a cold start pays it.

For each handler this runs a fresh interpreter with `-X importtime` twice: the handler module
alone, and the handler plus what its first invocation imports lazily (boto3's client machinery,
the JWT stack). The reference is a minimal Python Lambda's handler (`json` only), measured the
same way in the same run; the target is 150 ms.

    python -m bench.import_times [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from townhall.functions import ALL_FUNCTIONS

FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "functions"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS = 150.0
# What a first invocation imports on top of the module, per handler (lazy imports).
FIRST_CALL = {
    "handlers.http_api": ["boto3", "aws_lambda_powertools.utilities.idempotency"],
    "handlers.ws_authorizer": ["townhall.auth.tokens"],
    "handlers.ws_connect": ["boto3", "townhall.signaling.service"],
    "handlers.ws_disconnect": ["boto3"],
    "handlers.ws_signaling": ["boto3"],
}


def import_ms(modules: list[str]) -> float:
    code = "; ".join(f"import {m}" for m in modules)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=FUNCTIONS_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    # Top-level lines of the modules asked for (interpreter start-up imports are not counted;
    # a module already imported by an earlier one on the list adds nothing).
    wanted = set(modules)
    total = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self_us, cumulative_us, name = line[12:].split("|")
        if name.startswith("  ") or name.strip() not in wanted:
            continue
        if cumulative_us.strip().isdigit():
            total += int(cumulative_us)
    return total / 1000


def median(modules: list[str], repeat: int) -> float:
    return statistics.median(import_ms(modules) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    reference = median(["json"], args.repeat)
    print(
        f"reference: a minimal handler (import json) {reference:.1f} ms; target {TARGET_MS:.0f} ms"
    )
    print(
        f"{'handler':28} {'module ms':>10} {'+first call':>12} {'vs reference':>13} {'vs target':>10}"
    )
    rows = []
    for spec in ALL_FUNCTIONS:
        module = spec.handler.rsplit(".", 1)[0]
        alone = median([module], args.repeat)
        full = median([module, *FIRST_CALL.get(module, [])], args.repeat)
        rows.append(
            {"handler": module, "module_ms": round(alone, 1), "first_call_ms": round(full, 1)}
        )
        print(
            f"{module:28} {alone:10.1f} {full:12.1f} {full / reference:12.0f}x "
            f"{full / TARGET_MS:9.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import_times.json").write_text(
        json.dumps(
            {"reference_ms": round(reference, 1), "target_ms": TARGET_MS, "handlers": rows},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
