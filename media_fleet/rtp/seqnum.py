"""Serial number arithmetic for RTP sequence numbers and timestamps (RFC 3550, RFC 1982).

Sequence numbers are 16 bits and timestamps 32 bits; both wrap. "Newer" means ahead by less
than half the number space, which is how receivers order packets across a wrap.
"""

SEQ_MASK = 0xFFFF
TIMESTAMP_MASK = 0xFFFFFFFF

_SEQ_HALF = 0x8000
_TIMESTAMP_HALF = 0x80000000


def seq_add(seq: int, delta: int) -> int:
    """Return ``seq + delta`` modulo 2**16."""
    return (seq + delta) & SEQ_MASK


def seq_newer(a: int, b: int) -> bool:
    """Return True if sequence number ``a`` comes after ``b``, across a wrap."""
    return a != b and ((a - b) & SEQ_MASK) < _SEQ_HALF


def timestamp_add(timestamp: int, delta: int) -> int:
    """Return ``timestamp + delta`` modulo 2**32."""
    return (timestamp + delta) & TIMESTAMP_MASK


def timestamp_newer(a: int, b: int) -> bool:
    """Return True if RTP timestamp ``a`` comes after ``b``, across a wrap."""
    return a != b and ((a - b) & TIMESTAMP_MASK) < _TIMESTAMP_HALF
