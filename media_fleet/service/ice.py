"""Which local addresses a worker gathers ICE host candidates on.

aioice gathers on every non-loopback interface and has no option to choose. A node wants to
choose: on EC2, only the primary interface (whose address `--announced-host` replaces with
the public one); on a laptop or in the twin, only 127.0.0.1, which aioice would otherwise skip.
The one way in is aioice's module-level `get_host_addresses(use_ipv4, use_ipv6)`, which
`Connection.gather_candidates` looks up on each call. It is private, so it is checked here
and the node refuses to start if it has moved.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import aioice.ice


def gather_only_on(addresses: Sequence[str]) -> None:
    """Make every ICE agent in this process gather host candidates on `addresses` only."""
    if not addresses:
        raise ValueError("give at least one address to gather ICE candidates on")
    original = getattr(aioice.ice, "get_host_addresses", None)
    if original is None or list(inspect.signature(original).parameters) != [
        "use_ipv4",
        "use_ipv6",
    ]:
        raise RuntimeError(
            "aioice.ice.get_host_addresses(use_ipv4, use_ipv6) has changed; "
            "--ice-host cannot be honoured with this aioice release"
        )
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
