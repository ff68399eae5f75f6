"""The aiortc side of the node: every private aiortc hook lives in :mod:`.seams`."""
