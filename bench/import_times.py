"""Import time of each Lambda handler module, as a cold start pays it.

For each handler this runs a fresh interpreter with `-X importtime` twice: the handler module
alone, and the handler plus what its first invocation imports lazily (boto3's client machinery,
the JWT stack). The reference is a minimal Python Lambda's handler (`json` only), measured the
same way in the same run; the target is 150 ms.

Wall-clock import times grow with whatever else the machine runs, so each row also gives the
CPU time the interpreter spent (user + system, from the child's resource usage) minus that
of a bare interpreter start: on a busy machine that column is the one to read.

    python -m bench.import_times [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_ms(modules: list[str]) -> tuple[float, float]:
    """(wall ms of the imports, CPU ms of the whole interpreter run)."""
    code = "; ".join(f"import {m}" for m in modules) or "pass"
    cpu_before = _children_cpu()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=FUNCTIONS_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    cpu_ms = (_children_cpu() - cpu_before) * 1000
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
    return total / 1000, cpu_ms


def median(modules: list[str], repeat: int) -> tuple[float, float]:
    """Median wall ms and median CPU ms over `repeat` fresh interpreters."""
    runs = [import_ms(modules) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    _, bare_cpu = median([], args.repeat)  # the interpreter's own start-up
    reference, reference_cpu = median(["json"], args.repeat)
    reference_cpu = max(0.1, reference_cpu - bare_cpu)
    print(
        f"reference: a minimal handler (import json) {reference:.1f} ms wall, "
        f"{reference_cpu:.1f} ms CPU; target {TARGET_MS:.0f} ms"
    )
    print(
        f"{'handler':28} {'module ms':>10} {'+first call':>12} {'CPU ms':>8} "
        f"{'vs reference':>13} {'vs target':>10}"
    )
    rows = []
    for spec in ALL_FUNCTIONS:
        module = spec.handler.rsplit(".", 1)[0]
        alone, _ = median([module], args.repeat)
        full, full_cpu = median([module, *FIRST_CALL.get(module, [])], args.repeat)
        cpu = max(0.0, full_cpu - bare_cpu)
        rows.append(
            {
                "handler": module,
                "module_ms": round(alone, 1),
                "first_call_ms": round(full, 1),
                "first_call_cpu_ms": round(cpu, 1),
            }
        )
        print(
            f"{module:28} {alone:10.1f} {full:12.1f} {cpu:8.1f} {full / reference:12.0f}x "
            f"{full / TARGET_MS:9.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import_times.json").write_text(
        json.dumps(
            {
                "reference_ms": round(reference, 1),
                "reference_cpu_ms": round(reference_cpu, 1),
                "target_ms": TARGET_MS,
                "handlers": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
