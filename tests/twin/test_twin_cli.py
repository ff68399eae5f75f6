"""`python -m infra.twin`: prints its URL, serves, and saves the tables on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cli_serves_until_interrupted_then_snapshots(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.twin",
            "--port",
            "0",
            "--data",
            str(tmp_path),
            "--nodes",
            "2",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if "web app at " in line:
                url = line.split("web app at ", 1)[1].strip()
        assert url is not None and url.startswith("http://127.0.0.1:")
        response = httpx.get(url + "ws/@connections/x", timeout=5)
        assert response.status_code == 403  # the management API answers: the server is up
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "dynamodb" / "townhall-meetings.json").exists()
