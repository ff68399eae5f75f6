"""Where the Lambda code asset lives, and putting it on `sys.path` as Lambda does.

In AWS the asset (`functions/` as it stands) is unpacked at /var/task, which is on the
handler's `sys.path`; handlers import `townhall...` and are named "handlers.x.handler". The
twin runs the same modules in-process, so `functions/` must be importable however the twin
was started (`python -m infra.twin` from the repo root has only the root on the path).
"""

from __future__ import annotations

import sys
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def ensure_importable() -> None:
    entries = {Path(p).resolve() for p in sys.path if p}
    if FUNCTIONS_DIR not in entries:
        sys.path.append(str(FUNCTIONS_DIR))
