"""Janus 1.1.2 as the SFU benchmark's reference target: a real, short run in its namespace.

Needs root, ``janus`` and ``ip`` (``make system-deps``); without them the tests fail, they
never skip. About 15 s.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from bench.load.clip import encode_clip
from bench.targets.janus_check import measure_forwarding
from bench.targets.janus_client import join_janus
from bench.targets.janus_config import JANUS_BINARY
from bench.targets.janus_server import JanusServer


def namespaces() -> list[str]:
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True
    )
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


def process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return None


def test_tools_are_installed() -> None:
    assert JANUS_BINARY.exists(), "janus is missing: `make system-deps` installs it"
    assert shutil.which("ip"), "ip (iproute2) is missing: `make system-deps` installs it"


async def test_one_publisher_reaches_two_subscribers_and_stop_cleans_up(tmp_path: Path) -> None:
    clip = tmp_path / "clip.vp8"
    encode_clip(clip, width=320, height=180, fps=30, bitrate=1_000_000, seconds=1.0)
    server = JanusServer(workdir=tmp_path / "janus")
    try:
        await server.start(max_publishers=2, bitrate=1_000_000)
        pid, namespace = server.pid, server.namespace
        assert namespace in namespaces()
        assert process_name(pid) == "janus"
        window = await measure_forwarding(
            server, clip=clip, fps=30, subscribers=2, seconds=3.0, warmup=1.0, client_cpus=None
        )
    finally:
        await server.stop()

    # Each subscriber gets the publisher's video (~100+ packets/s here) and audio (50/s).
    assert sorted(window.per_subscriber) == ["subscriber-0", "subscriber-1"]
    for name, packets in window.per_subscriber.items():
        assert packets > 3.0 * 100, f"{name} got only {packets} packets in 3 s"
    assert window.loss < 0.05, f"loss {window.loss:.1%}"
    assert window.janus_cpu_seconds > 0
    assert window.hangups == []
    assert window.problems == []
    # Everything went over lo, none over the veth pair that only exists for ICE gathering.
    assert sum(v for k, v in window.veth.items() if k.endswith("_packets")) == 0

    assert namespace not in namespaces()
    assert process_name(pid) != "janus"
    await server.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.pid


async def test_bad_room_settings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    server = JanusServer(workdir=tmp_path / "janus")
    with pytest.raises(ValueError, match="publishers"):
        await server.start(max_publishers=0, bitrate=1_000_000)
    assert server.namespace not in namespaces()
    assert not (tmp_path / "janus").exists()


async def test_join_refuses_a_room_id_that_is_not_an_int() -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        with pytest.raises(TypeError, match="room must be an int"):
            await join_janus(
                http,
                "http://127.0.0.1:9/janus",  # never contacted: the check comes first
                "4242",  # type: ignore[arg-type]
                display="x",
                publish=None,
                subscribe=None,
                video_feeds=0,
                audio_feeds=0,
                wait_publishers=0,
                timeout=1.0,
            )
