"""What the control plane (functions/) and the media fleet (media_fleet/) agree on.

Both sides import this package, and neither imports the other: a contract changes here, once,
and both follow. It holds only definitions and pure functions (no AWS client, no I/O), so the
media node ships it without the control plane.
"""
