"""The Janus configuration of the benchmark's reference target, rendered into a work directory.

Nothing under /etc/janus is read or changed: ``janus -C <workdir>/janus.jcfg -F <workdir>``
reads only these files. The plugin and transport folders are folders of symlinks holding
VideoRoom and HTTP alone, so no other plugin or transport can load (a ``disable`` list would
silently let in anything a later package adds). Event handlers and loggers get empty folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

JANUS_BINARY = Path("/usr/bin/janus")
LIBRARY_ROOTS = (
    Path("/usr/lib/x86_64-linux-gnu/janus"),
    Path("/usr/lib/aarch64-linux-gnu/janus"),
    Path("/usr/lib/janus"),
    Path("/opt/janus/lib/janus"),
)
VIDEOROOM = "libjanus_videoroom.so"
HTTP_TRANSPORT = "libjanus_http.so"
HTTP_PORT = 8088
ICE_ADDRESS = "127.0.0.1"
"The only address Janus gathers on: set on the namespace's veth end (see docs/bench-janus.md)."


@dataclass(frozen=True)
class RoomSettings:
    room: int
    publishers: int
    bitrate: int
    event_loops: int = 0
    """Janus's ``general.event_loops``: 0 is its default (a thread per handle), n > 0 makes
    every handle share n static loops."""

    def __post_init__(self) -> None:
        if not 0 <= self.event_loops <= 64:
            raise ValueError(f"event_loops must be 0..64, not {self.event_loops}")
        if not 1 <= self.publishers <= 10_000:
            raise ValueError(f"publishers must be 1..10000, not {self.publishers}")
        if not 10_000 <= self.bitrate <= 100_000_000:
            raise ValueError(f"bitrate must be 10 kbit/s..100 Mbit/s, not {self.bitrate}")
        if self.room <= 0:
            raise ValueError(f"room must be a positive integer, not {self.room}")


def library_root() -> Path:
    """The folder holding Janus's ``plugins/`` and ``transports/`` (Debian's multiarch path)."""
    for root in LIBRARY_ROOTS:
        if (root / "plugins" / VIDEOROOM).exists() and (
            root / "transports" / HTTP_TRANSPORT
        ).exists():
            return root
    raise RuntimeError(
        f"Janus's VideoRoom plugin and HTTP transport were not found under any of "
        f"{[str(r) for r in LIBRARY_ROOTS]}; install Janus 1.1.2 (`make system-deps`)"
    )


def render(workdir: Path, room: RoomSettings) -> Path:
    """Write the configuration into ``workdir`` and return the main file's path."""
    root = library_root()
    folders = {name: workdir / name for name in ("plugins", "transports", "events", "loggers")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name, library in (("plugins", VIDEOROOM), ("transports", HTTP_TRANSPORT)):
        link = folders[name] / library
        link.unlink(missing_ok=True)
        link.symlink_to(root / name / library)

    main = workdir / "janus.jcfg"
    main.write_text(
        f"""general: {{
	configs_folder = "{workdir}"
	plugins_folder = "{folders["plugins"]}"
	transports_folder = "{folders["transports"]}"
	events_folder = "{folders["events"]}"
	loggers_folder = "{folders["loggers"]}"
	debug_level = 4
	session_timeout = 60
	event_loops = {room.event_loops}
}}
media: {{
	ipv6 = false
}}
nat: {{
	# Janus skips interfaces flagged LOOPBACK, so 127.0.0.1 sits on a veth end as well.
	ice_enforce_list = "{ICE_ADDRESS}"
}}
"""
    )
    (workdir / "janus.transport.http.jcfg").write_text(
        f"""general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {HTTP_PORT}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"""
    )
    # fir_freq 0: no periodic keyframe requests, so the publisher's packet rate is the clip's.
    (workdir / "janus.plugin.videoroom.jcfg").write_text(
        f"""general: {{
}}
room-{room.room}: {{
	description = "townhall bench"
	publishers = {room.publishers}
	bitrate = {room.bitrate}
	fir_freq = 0
	audiocodec = "opus"
	videocodec = "vp8"
	audiolevel_ext = true
	record = false
}}
"""
    )
    return main
