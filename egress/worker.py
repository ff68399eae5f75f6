"""The program worker as a process: ``python -m egress.worker --root DIR --stream NAME``.

Phase 1 encodes the synthetic program (:mod:`egress.program.synthetic`); phase 2 puts the SFU
subscription behind the same :class:`~egress.program.source.ProgramSource` seam.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from egress.hls.packager import PackagerSettings, ProgramPackager, Rendition
from egress.program.synthetic import SyntheticProgram

RUNGS = {
    "720p": Rendition("720p", 1280, 720, 2_500_000),
    "360p": Rendition("360p", 640, 360, 800_000),
    "180p": Rendition("180p", 320, 180, 300_000),
}
MAX_DURATION = 24 * 3600.0
"A synthetic program longer than a day is a mistake, not a broadcast."


def parse_rungs(text: str) -> tuple[Rendition, ...]:
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in RUNGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"rungs must be among {', '.join(RUNGS)}")
    return tuple(RUNGS[name] for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Encode a program into LL-HLS.")
    parser.add_argument("--root", type=Path, required=True, help="the origin's store")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of program")
    parser.add_argument("--rungs", type=parse_rungs, default=parse_rungs("720p,360p"))
    parser.add_argument("--part", type=float, default=1 / 3, help="part duration, seconds")
    parser.add_argument("--segment", type=float, default=2.0, help="segment duration, seconds")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument(
        "--as-fast-as-possible", action="store_true", help="do not pace frames to the clock"
    )
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be within (0, {MAX_DURATION:.0f}] s")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    top = args.rungs[0]
    source = SyntheticProgram(width=top.width, height=top.height, duration=args.duration)
    settings = PackagerSettings(
        part_duration=args.part,
        segment_duration=args.segment,
        preset=args.preset,
        ladder=args.rungs,
    )
    try:
        packager = ProgramPackager(args.root, args.stream, source, settings)
    except ValueError as error:
        parser.error(str(error))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    frames = packager.run(realtime=not args.as_fast_as_possible, stop=stop)
    logging.getLogger("egress.worker").info("encoded %d frames", frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
