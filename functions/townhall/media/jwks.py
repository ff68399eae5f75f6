"""The token-signing public key as a JSON Web Key Set, served by the HTTP API
(`GET /api/.well-known/jwks.json`) for media nodes to verify media tokens with.

Rendering needs the control plane's signing key, so it lives here; the format, and reading a
set back, are the contract in `contracts.jwks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contracts.jwks import public_jwk

if TYPE_CHECKING:
    from townhall.auth.keys import SigningKey


def jwks(signing_key: SigningKey) -> dict[str, Any]:
    """The public half of `signing_key` as a JWKS document, ready to serve as JSON."""
    return {"keys": [public_jwk(signing_key.public_key, signing_key.kid)]}
