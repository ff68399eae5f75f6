"""Where the Lambda code asset lives, and putting it on `sys.path` as Lambda does.

In AWS the asset (`functions/` as it stands, plus `contracts/` at its root) is unpacked at
/var/task, which is on the handler's `sys.path`; handlers import `townhall...` and
`contracts...` and are named "handlers.x.handler". The twin runs the same modules in-process,
so both must be importable however the twin was started (`python -m infra.twin` from the repo
root has only the root on the path, which holds `contracts/`; a script started elsewhere may
have neither).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
# The asset's other root: `contracts/` sits in the repository's root, beside `functions/`.
CONTRACTS_PARENT = REPO_ROOT


def ensure_importable() -> None:
    entries = {Path(p).resolve() for p in sys.path if p}
    for directory in (FUNCTIONS_DIR, CONTRACTS_PARENT):
        if directory not in entries:
            sys.path.append(str(directory))
