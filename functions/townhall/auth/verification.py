"""The one JWT verification path for every Townhall token kind (access, join, media).

EdDSA is pinned before anything else is read, so "none" and HMAC-with-the-public-key never
get a chance; the key is chosen by the header's key id from the keys the caller trusts; times
are checked against the caller's clock with a small skew, so tests and servers share one "now".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from townhall.errors import Unauthenticated

ISSUER = "townhall"
ALGORITHM = "EdDSA"


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
    """The token's claims, or Unauthenticated naming the first check that failed.

    `kind` names the token in messages ("token", "media token"); `wrong_audience` is the
    message for a valid token of another kind.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise Unauthenticated(f"malformed {kind}") from exc
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated(f"{kind} algorithm not accepted")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise Unauthenticated(f"{kind} signed with an unknown key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "sub", "aud", "iss"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise Unauthenticated(wrong_audience) from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthenticated(f"{kind} signature is invalid") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid {kind}: {exc}") from exc
    moment = now()
    if int(claims["exp"]) + skew_seconds < moment:
        raise Unauthenticated(f"{kind} has expired")
    if int(claims["iat"]) - skew_seconds > moment:
        raise Unauthenticated(f"{kind} is not valid yet")
    return claims
