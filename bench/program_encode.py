"""Encoder CPU of the program worker: per rendition and per ladder, at each x264 preset.

Each configuration packages ``--seconds`` of the synthetic program (egress/program/synthetic.py,
720p at 30 fps) as fast as the machine allows, into a throwaway store, and reads the process's
CPU time (every thread: x264's included). CPU seconds per second of program is the share of a
core the worker needs to keep up live. The cost of drawing the synthetic frames alone is
measured the same way and reported apart (it is not part of encoding).

The synthetic picture runs with ``detail=True`` (a panning random texture and grain), so x264
spends its bits and motion search as it would on a camera picture rather than on a flat ramp;
the bitrates show that it fills the rungs' caps. A real stage is still another picture.

    PYTHONPATH=functions:. .venv/bin/python -m bench.program_encode [--seconds 15]

Writes bench/results/program_encode.json and prints one line per configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from egress.hls.packager import LADDER, PackagerSettings, ProgramPackager, Rendition
from egress.program.synthetic import SyntheticProgram

RESULTS = Path(__file__).resolve().parent / "results"
TOP, LOW = LADDER


def configurations() -> list[tuple[str, str, tuple[Rendition, ...]]]:
    return [
        ("720p", "veryfast", (TOP,)),
        ("360p", "veryfast", (LOW,)),
        ("720p+360p", "veryfast", (TOP, LOW)),
        ("720p+360p", "superfast", (TOP, LOW)),
        ("720p+360p", "ultrafast", (TOP, LOW)),
    ]


def source_cost(seconds: float) -> float:
    started = time.process_time()
    for _ in SyntheticProgram(duration=seconds, detail=True).ticks():
        pass
    return time.process_time() - started


def encode_cost(seconds: float, preset: str, ladder: tuple[Rendition, ...]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        packager = ProgramPackager(
            Path(folder),
            "bench",
            SyntheticProgram(duration=seconds, detail=True),
            PackagerSettings(preset=preset, ladder=ladder),
        )
        wall, cpu = time.monotonic(), time.process_time()
        packager.run()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        sizes = {
            rendition.name: sum(
                path.stat().st_size
                for path in (Path(folder) / "bench" / rendition.name).glob("seg*")
            )
            for rendition in ladder
        }
    return {
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "bitrate_kbps": {name: round(size * 8 / seconds / 1000) for name, size in sizes.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="program length per run")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 600:
        parser.error("--seconds must be within 1 to 600")
    load_before = os.getloadavg()[0]
    drawing = source_cost(args.seconds)
    runs = []
    for name, preset, ladder in configurations():
        measured = encode_cost(args.seconds, preset, ladder)
        core = (measured["cpu_s"] - drawing) / args.seconds
        runs.append({"ladder": name, "preset": preset, "core": round(core, 3), **measured})
        print(
            f"{name:10} {preset:9} {core:.2f} core (encode + package, drawing excluded),"
            f" {measured['bitrate_kbps']} kbit/s"
        )
    result = {
        "benchmark": "program_encode",
        "what": "CPU seconds per second of program for the worker's encode and packaging "
        "(libx264 tune=zerolatency, GOP 2 s, parts 1/3 s, AAC 96 kbit/s per rung; "
        "the synthetic source's drawing cost measured apart and subtracted)",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "note": "other sessions ran tests on the same 2 cores during the run",
        },
        "program_seconds": args.seconds,
        "drawing_core": round(drawing / args.seconds, 3),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "program_encode.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
