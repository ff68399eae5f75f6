"""`python -m media_fleet`: run an SFU media node (see docs/media-node.md)."""

from __future__ import annotations

import asyncio
import logging
import sys

from media_fleet.service.settings import parse
from media_fleet.service.supervisor import Supervisor


def main() -> int:
    settings = parse()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,  # stdout carries the EMF load metric lines
        format="%(asctime)s supervisor %(levelname)s %(name)s: %(message)s",
    )
    # One line per forwarded request would drown the node's own log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(Supervisor(settings).run())


if __name__ == "__main__":
    sys.exit(main())
