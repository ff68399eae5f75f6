"""The one verification path for every Townhall token (access, join, media, revocation).

EdDSA is pinned before anything else is read, so "none" and HMAC-with-the-public-key never get
a chance; the key is chosen by the header's key id from the keys the caller trusts; times are
checked against the caller's clock with a small skew. Public keys only: the private key, and
so the issuing of tokens, stays in the control plane.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.errors import TokenRejected

ISSUER = "townhall"
ALGORITHM = "EdDSA"
# Claims every Townhall token carries.
COMMON_CLAIMS: tuple[str, ...] = ("exp", "iat", "aud", "iss")


def verify_eddsa(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    audience: str,
    now: Callable[[], float],
    skew_seconds: int,
    kind: str = "token",
    wrong_audience: str = "token is not valid for this use",
    required: Sequence[str] = ("sub",),
) -> dict[str, Any]:
    """The token's claims, or TokenRejected naming the first check that failed.

    `kind` names the token in messages ("token", "media token"); `wrong_audience` is the
    message for a valid token of another kind; `required` names the claims this kind needs
    besides the common ones, checked after the audience, so that a token of another kind is
    reported as such rather than as one missing a claim.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise TokenRejected(f"malformed {kind}") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"{kind} algorithm not accepted")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise TokenRejected(f"{kind} signed with an unknown key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={"require": list(COMMON_CLAIMS), "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError as exc:
        raise TokenRejected(wrong_audience) from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenRejected(f"{kind} signature is invalid") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRejected(f"invalid {kind}: {exc}") from exc
    for name in required:
        if name not in claims:
            raise TokenRejected(f'invalid {kind}: Token is missing the "{name}" claim')
    moment = now()
    if int(claims["exp"]) + skew_seconds < moment:
        raise TokenRejected(f"{kind} has expired")
    if int(claims["iat"]) - skew_seconds > moment:
        raise TokenRejected(f"{kind} is not valid yet")
    return claims
