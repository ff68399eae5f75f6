"""A network namespace of the test's own with a Chromium inside it: how the TURN test and the
TURN join benchmark put a browser behind a firewall.

`network_namespace()` makes a namespace and a veth pair (10.203.N.1 on the root side, where the
twin, its media node and coturn listen; 10.203.N.2 inside), and removes both afterwards.
`fence()` drops, inside the namespace only, all UDP to the root side and TCP to the ports
given (nftables). `chromium_inside()` writes a launcher that starts Chromium in the namespace
and a HOME whose NSS store trusts the twin's CA.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("ip", "nft", "certutil", "turnserver")


@dataclass(frozen=True)
class Namespace:
    name: str
    host: str  # the root side's address
    inside: str  # the namespace's address


def missing_tools() -> list[str]:
    """What the namespace, the fence and the CA trust need and this machine lacks."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def run(*argv: str, input_text: str | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, input=input_text, timeout=30)


@contextmanager
def network_namespace() -> Iterator[Namespace]:
    n = os.getpid() % 250
    ns = Namespace(f"th-turn-{os.getpid()}", f"10.203.{n}.1", f"10.203.{n}.2")
    outside, peer = f"thtu{n}a", f"thtu{n}b"
    run("ip", "netns", "add", ns.name)
    try:
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", peer, "netns", ns.name)
        run("ip", "addr", "add", f"{ns.host}/24", "dev", outside)
        run("ip", "link", "set", outside, "up")
        inside = ("ip", "netns", "exec", ns.name)
        run(*inside, "ip", "addr", "add", f"{ns.inside}/24", "dev", peer)
        run(*inside, "ip", "link", "set", peer, "up")
        run(*inside, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=30)


def fence(ns: Namespace, tcp_ports: Iterable[int]) -> None:
    """Inside `ns` only: drop all UDP to the root side, and TCP to `tcp_ports` there."""
    ports = ", ".join(str(p) for p in tcp_ports)
    rules = f"""
table inet fence {{
  chain output {{
    type filter hook output priority 0; policy accept;
    ip daddr {ns.host} meta l4proto udp drop
    ip daddr {ns.host} tcp dport {{ {ports} }} drop
  }}
}}
"""
    run("ip", "netns", "exec", ns.name, "nft", "-f", "-", input_text=rules)


def chromium_inside(ns: Namespace, chromium: str, ca_file: Path, home: Path) -> Path:
    """A launcher for Chromium in `ns` (give it to Playwright as the executable, with
    HOME=`home`), whose certificate store trusts `ca_file`."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    run("certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password")
    run(
        "certutil",
        "-A",
        "-d",
        f"sql:{nssdb}",
        "-n",
        "townhall-twin",
        "-t",
        "C,,",
        "-i",
        str(ca_file),
    )
    launcher = home / "chromium-in-namespace"
    launcher.write_text(f'#!/bin/sh\nexec ip netns exec {ns.name} {chromium} "$@"\n')
    launcher.chmod(0o755)
    return launcher
