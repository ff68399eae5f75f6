"""Real processes for the broadcast tests: the origin and the worker, on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}/functions:{ROOT}"}


@contextmanager
def origin_process(root: Path, *, max_held: int = 100) -> Iterator[str]:
    """Start ``python -m egress.origin``; yields its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "egress.origin", "--root", str(root), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--max-held", str(max_held)],
        env=environment(),
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the origin exited with {process.returncode}")
            try:
                httpx.get(f"{base}/live/none/index.m3u8", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the origin did not answer within 20 s") from None
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def start_worker(root: Path, stream: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "egress.worker", "--root", str(root), "--stream", stream, *args],
        env=environment(),
        cwd=ROOT,
    )


def wait_for_file(path: Path, worker: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait until the worker has written ``path``; fails if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited with {worker.returncode} before {path.name}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path} within {timeout} s")
        time.sleep(0.05)
