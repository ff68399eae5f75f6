"""Where the token-signing key comes from.

In AWS a Secrets Manager secret holds a random string, and the Ed25519 seed is its SHA-256, so
CDK can generate the secret without a custom resource. In the twin, a PEM file under the data
folder is generated on first use. Either way the key is loaded once per Lambda container.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from townhall.config import Settings


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    # Key id for the JWT header: lets a rotation accept old and new keys side by side.
    kid: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @classmethod
    def from_private_key(cls, key: Ed25519PrivateKey) -> SigningKey:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kid = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:9]).decode()
        return cls(private_key=key, kid=kid)

    @classmethod
    def from_secret_string(cls, secret: str) -> SigningKey:
        seed = hashlib.sha256(secret.encode()).digest()
        return cls.from_private_key(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_file(cls, path: Path) -> SigningKey:
        """Load the PEM at `path`, creating it (mode 0600) if it does not exist yet."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls.from_private_key(key)


_cached: dict[tuple[str | None, str | None], SigningKey] = {}
_lock = threading.Lock()


def load_signing_key(settings: Settings) -> SigningKey:
    """The signing key of the configured source, loaded once per source and process."""
    source = (settings.signing_key_secret_arn, settings.signing_key_file)
    with _lock:
        if source not in _cached:
            _cached[source] = _load(settings)
        return _cached[source]


def _load(settings: Settings) -> SigningKey:
    if settings.signing_key_secret_arn:
        import boto3  # only in AWS: keeps the twin's and the tests' imports light

        client = boto3.client("secretsmanager")
        secret = client.get_secret_value(SecretId=settings.signing_key_secret_arn)
        return SigningKey.from_secret_string(secret["SecretString"])
    if settings.signing_key_file:
        return SigningKey.from_file(Path(settings.signing_key_file))
    raise RuntimeError(
        "no signing key configured: set SIGNING_KEY_SECRET_ARN (AWS) or SIGNING_KEY_FILE (local)"
    )
