"""The local twin: Townhall's AWS topology emulated on one machine, on loopback.

See docs/twin.md. The entry points are `LocalTwin.start(...)` and `python -m infra.twin`.
"""

from infra.twin.code_asset import ensure_importable

# Before anything imports `townhall`: the twin runs the Lambda code asset in-process.
ensure_importable()

from infra.twin.server import LocalTwin, TwinOptions, running_twin  # noqa: E402

__all__ = ["LocalTwin", "TwinOptions", "running_twin"]
