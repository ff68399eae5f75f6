"""The Standard Webhooks signature (https://www.standardwebhooks.com/).

    webhook-id:        msg_...          the same on every attempt: receivers deduplicate by it
    webhook-timestamp: 1733612345       seconds since the epoch, when this attempt was signed
    webhook-signature: v1,<base64>      HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the
                                        secret's bytes (base64 after "whsec_"); during a rotation
                                        one "v1,..." per secret, space-separated

Receivers refuse a timestamp more than TOLERANCE_SECONDS from their clock (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
TOLERANCE_SECONDS = 5 * 60


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a signing secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_now: list[str], message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three headers of one attempt, signed with every secret in `secrets_now`."""
    if not secrets_now:
        raise ValueError("nothing to sign with")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, message_id, timestamp, body) for s in secrets_now
        ),
    }
