"""`python -m infra.twin`: run the whole of Townhall on this machine until Ctrl-C.

    python -m infra.twin [--host 127.0.0.1] [--port 8000] [--data .twin] [--nodes N]

Prints the web app's URL, then serves until interrupted (Ctrl-C or SIGTERM), and snapshots
the tables into the data folder on the way out. Handler logs (Powertools writes JSON lines to
stdout) and the twin's own log lines appear on the console.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from infra.twin import turn
from infra.twin.server import LocalTwin, TwinOptions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.twin", description="Run Townhall's local twin on loopback."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--data", type=Path, default=Path(".twin"), help="data folder (default: %(default)s)"
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="SFU media nodes to run (python -m media_fleet), registered like EC2 nodes",
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=600.0, help="WebSocket idle timeout, seconds"
    )
    parser.add_argument(
        "--max-connection", type=float, default=7200.0, help="WebSocket maximum duration, seconds"
    )
    parser.add_argument(
        "--lose-abrupt-disconnects",
        action="store_true",
        help="skip $disconnect for sockets dropped without a close frame",
    )
    parser.add_argument(
        "--turn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run coturn for TURN (default: when Debian's coturn is installed)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--log-level", default="INFO", help="the twin's log level (default: %(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # moto's server logs every request (including the snapshot scans), botocore every
    # credential lookup; keep the console for the twin's and the handlers' own lines.
    for noisy in ("werkzeug", "botocore.credentials"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = TwinOptions(
        media_nodes=args.nodes,
        idle_timeout_seconds=args.idle_timeout,
        max_connection_seconds=args.max_connection,
        lose_abrupt_disconnects=args.lose_abrupt_disconnects,
        access_log=args.access_log,
        turn=turn.available() if args.turn is None else args.turn,
    )
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    twin = LocalTwin.start(args.data, host=args.host, port=args.port, options=options)
    try:
        print(f"Townhall twin: web app at {twin.base_url}/", flush=True)
        print(f"  WebSocket API {twin.ws_url}   DynamoDB {twin.dynamodb_endpoint}", flush=True)
        if twin.turn is not None:
            print(f"  TURN {' '.join(twin.turn.addresses.urls)}", flush=True)
        print(f"  data in {twin.data_dir}; Ctrl-C to stop", flush=True)
        while not stop_requested.wait(1.0):
            pass
        print("stopping: closing connections and saving the tables...", flush=True)
    finally:
        twin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
