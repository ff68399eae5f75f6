"""JSON Web Key Sets of Ed25519 signing keys (RFC 7517, OKP keys per RFC 8037).

The control plane publishes the public half of its signing key as a JWKS (rendered by
`public_jwk`); a media node reads it back (`public_keys_from_jwks`) and verifies media tokens
with the public keys alone, so a compromised node cannot mint tokens for other nodes or
meetings.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519_RAW_KEY_BYTES = 32
# A set larger than this is not ours: a rotation keeps two or three keys, never dozens.
MAX_KEYS = 8


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }


def public_keys_from_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> Ed25519 public key for every signing key in the set.

    Raises ValueError for anything that is not a well-formed Ed25519 signing key, and for a
    private key (`d`) found in the set: that would mean the server leaks its signing key.
    """
    keys = document.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError("JWKS has no keys")
    if len(keys) > MAX_KEYS:
        raise ValueError(f"JWKS has more than {MAX_KEYS} keys")
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            raise ValueError("JWKS entry is not an object")
        kid, key = public_key_from_jwk(jwk)
        found[kid] = key
    return found


def public_key_from_jwks(document: Mapping[str, Any], kid: str) -> Ed25519PublicKey:
    """The one public key with id `kid` in the set."""
    keys = public_keys_from_jwks(document)
    if kid not in keys:
        raise ValueError(f"JWKS has no key {kid!r}")
    return keys[kid]


def public_key_from_jwk(jwk: Mapping[str, Any]) -> tuple[str, Ed25519PublicKey]:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("JWK is not an Ed25519 (OKP) key")
    if "d" in jwk:
        raise ValueError("JWK holds a private key; a JWKS must publish public keys only")
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") != "EdDSA":
        raise ValueError("JWK is not an EdDSA signing key")
    kid, x = jwk.get("kid"), jwk.get("x")
    if not isinstance(kid, str) or not kid or not isinstance(x, str):
        raise ValueError("JWK lacks kid or x")
    raw = _b64url_decode(x)
    if len(raw) != ED25519_RAW_KEY_BYTES:
        raise ValueError("JWK x is not a 32-byte Ed25519 public key")
    return kid, Ed25519PublicKey.from_public_bytes(raw)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ValueError("JWK x is not base64url") from exc
