"""Meters for the SFU benchmarks: process CPU and memory from /proc, UDP drops, pinning, the
Python per-packet floor, and the subscribers' loss over a window."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a process to ``cpus`` (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


def renice(pid: int, niceness: int) -> None:
    """Set the nice value of every thread of a process (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_schedstat(pid: int) -> tuple[float, float]:
    """(seconds on CPU, seconds runnable but waiting for a CPU) of a process's main thread,
    from /proc/<pid>/schedstat; the wait says whether other load starved it."""
    try:
        run_ns, wait_ns, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def proc_rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def udp_receive_drops(pids: dict[str, list[int]]) -> dict[str, int]:
    """Datagrams the kernel dropped for full receive buffers: machine-wide (/proc/net/snmp
    RcvbufErrors, and SndbufErrors for full send buffers) and per group of processes (the ``drops`` column of the UDP table of each
    process's own network namespace, ``/proc/<pid>/net/udp``, for the sockets it holds)."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    udp = [line.split() for line in lines if line.startswith("Udp:")]
    drops = {
        "machine": int(udp[1][udp[0].index("RcvbufErrors")]),
        # A full send buffer: sendto gets EAGAIN, and asyncio queues the datagram in memory.
        "machine_send_buffer_full": int(udp[1][udp[0].index("SndbufErrors")]),
    }
    for name, group in pids.items():
        total = 0
        for pid in group:
            with contextlib.suppress(OSError, ValueError, IndexError):
                by_inode: dict[int, int] = {}
                for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
                    fields = line.split()
                    by_inode[int(fields[9])] = int(fields[12])
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        target = os.readlink(fd)
                        if target.startswith("socket:["):
                            total += by_inode.get(int(target[8:-1]), 0)
        drops[name] = total
    return drops


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def e2e_summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0, "p50": 0.0, "p99": 0.0}
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def window_loss(marks1: list[dict[str, Any]], marks2: list[dict[str, Any]]) -> dict[str, Any]:
    """Loss per subscriber slot between two marks of the same client processes.

    Expected = growth of the slot's extended highest sequence number, received = packets
    counted (late ones included). Slots that had no packet at the first mark are left out.
    """
    expected = received = 0
    worst = 0.0
    per_slot: dict[str, dict[str, int]] = {}
    for first, second in zip(marks1, marks2, strict=True):
        for slot, (got2, high2) in second["slots"].items():
            got1, high1 = first["slots"].get(slot, [0, None])
            if high1 is None or high2 is None:
                continue
            slot_expected, slot_received = high2 - high1, got2 - got1
            per_slot[slot] = {"expected": slot_expected, "received": slot_received}
            expected += slot_expected
            received += slot_received
            if slot_expected > 0:
                worst = max(worst, 1 - slot_received / slot_expected)
    return {
        "expected": expected,
        "received": received,
        "loss": 1 - received / expected if expected else float("nan"),
        "worst_slot_loss": worst,
        "slots": len(per_slot),
        "per_slot": per_slot,
    }


# --- the Python per-packet floor, in this run ------------------------------------------------


def measure_floor(packet_size: int, count: int = 20000) -> dict[str, Any]:
    """µs per packet of SRTP protect (aiortc's preferred profile, pylibsrtp) and of a loopback
    UDP ``sendto`` of a packet that size, timed on this machine now (before any load)."""
    from aiortc.rtcdtlstransport import SRTP_PROFILES
    from pylibsrtp import Policy, Session

    profile = SRTP_PROFILES[0]
    policy = Policy(
        key=os.urandom(profile.key_length + profile.salt_length),
        ssrc_type=Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=profile.libsrtp_profile,
    )
    session = Session(policy)
    payload = os.urandom(packet_size - 12)
    plain = [
        struct.pack("!BBHII", 0x80, 96, sequence & 0xFFFF, sequence * 3000, 0x1234) + payload
        for sequence in range(count)
    ]
    started = time.perf_counter()
    protected = [session.protect(packet) for packet in plain]
    protect_us = (time.perf_counter() - started) * 1e6 / count

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        address = receiver.getsockname()
        batch, spent = 100, 0.0
        for start in range(0, count, batch):
            chunk = protected[start : start + batch]
            began = time.perf_counter()
            for packet in chunk:
                sender.sendto(packet, address)
            spent += time.perf_counter() - began
            with contextlib.suppress(BlockingIOError):
                for _ in range(batch):  # drain, untimed, so no send meets a full buffer
                    receiver.recv(2048)
        sendto_us = spent * 1e6 / count
    finally:
        receiver.close()
        sender.close()
    return {
        "packet_bytes": packet_size,
        "srtp_profile": profile.openssl_profile.decode(),
        "srtp_protect_us": protect_us,
        "udp_sendto_us": sendto_us,
        "floor_us": protect_us + sendto_us,
        "udp_sendto_to_waiting_reader_us": sendto_to_waiting_reader(protected[:2000]),
    }


READER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(5)
try:
    while s.recv(2048) != b"stop":
        pass
except TimeoutError:
    pass
"""


def sendto_to_waiting_reader(packets: list[bytes], gap_s: float = 0.0005) -> float:
    """µs per loopback ``sendto`` when another process is blocked in ``recv`` on the socket
    (paced, so that each datagram wakes it up), as the node's sends to its subscribers do."""
    reader = subprocess.Popen(
        [sys.executable, "-c", READER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert reader.stdout is not None
        address = ("127.0.0.1", int(reader.stdout.readline()))
        spent = 0.0
        for packet in packets:
            time.sleep(gap_s)
            began = time.perf_counter()
            sender.sendto(packet, address)
            spent += time.perf_counter() - began
        sender.sendto(b"stop", address)
        reader.wait(5)
        return spent * 1e6 / len(packets)
    finally:
        sender.close()
        if reader.poll() is None:
            reader.kill()
            reader.wait()
