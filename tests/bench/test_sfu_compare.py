"""A real smoke run of the side-by-side SFU benchmark: our node and the naive relay, the
smallest meeting, a few seconds each. It checks that the harness writes its JSON and PNG with
figures that make sense, not the figures themselves (speed is measured in bench/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_of_ours_and_naive_writes_json_png_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    run = subprocess.run(
        [
            sys.executable, "-m", "bench.sfu_compare",
            "--quick", "--targets", "ours,naive", "--scenarios", "meeting",
            "--seconds", "3", "--warmup", "1", "--budget-minutes", "2",
            "--out", str(out),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    report = json.loads(out.read_text())
    png = out.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert report["machine"]["aiortc"] and report["machine"]["cpus"] >= 1
    meeting = report["results"]["meeting"]
    for target in ("ours", "naive"):
        (step,) = meeting[target]["steps"]
        shown = {k: v for k, v in step.items() if k != "logs"} | {"logs": step.get("logs")}
        assert "error" not in step, shown
        assert step["load"] == 5 and step["expected_streams"] == 5 * (4 + 3)
        assert step["streams_seen"] == step["expected_streams"], shown
        assert step["delivered_packets"] > 0 and step["subscriber_expected"] > 0, shown
        assert 0 <= step["subscriber_loss"] < 0.5, shown
        assert step["server_cpu_seconds"] > 0 and step["cpu_us_per_packet"] > 0, shown
        assert step["server_rss_bytes"] > 10 * 2**20
    ours, naive = meeting["ours"]["steps"][0], meeting["naive"]["steps"][0]
    # Ours forwards the publishers' packets as they are: every frame arrives, stamped.
    assert ours["video_frame_rate_ratio"] > 0.5, ours
    assert ours["added_latency_us"]["p50"] > 0 and ours["end_to_end_us"]["p50"] > 0
    assert naive["added_latency_us"] is None  # re-encoded frames carry no stamp
    (row,) = report["ratios"]
    assert row["scenario"] == "meeting" and row["load"] == 5
    assert row["cpu_us_per_packet_ours_to_naive"] > 0
    assert "ours / other" in run.stdout and "aims:" in run.stdout
