"""The one JWT verification path for every Townhall token kind (access, join, media).

EdDSA is pinned before anything else is read, so "none" and HMAC-with-the-public-key never
get a chance; the key is chosen by the header's key id from the keys the caller trusts; times
are checked against the caller's clock with a small skew, so tests and servers share one "now".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.errors import TokenRejected
from contracts.tokens import ALGORITHM, ISSUER
from contracts.tokens import verify_eddsa as verify_with_contract
from townhall.errors import Unauthenticated

__all__ = ["ALGORITHM", "ISSUER", "verify_eddsa"]


def verify_eddsa(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    audience: str,
    now: Callable[[], float],
    skew_seconds: int,
    kind: str = "token",
    wrong_audience: str = "token is not valid for this use",
) -> dict[str, Any]:
    """The token's claims, or Unauthenticated naming the first check that failed (the
    contract's verification, shared with the media node, in the control plane's errors)."""
    try:
        return verify_with_contract(
            token,
            keys,
            audience=audience,
            now=now,
            skew_seconds=skew_seconds,
            kind=kind,
            wrong_audience=wrong_audience,
        )
    except TokenRejected as exc:
        raise Unauthenticated(exc.message) from exc
