"""The front's TLS certificate: self-signed, made at every start, never written to disk for long.

The control plane (the signaling Lambda, outside any VPC) reaches a node's front on its public
address. No CA is involved: the node generates an ECDSA P-256 key and a self-signed certificate
when it starts and publishes the SHA-256 fingerprint of the certificate (DER) in its registry
item (`control_cert_sha256`); the control plane pins exactly that fingerprint
(`townhall.media.node_client`). Trust therefore rests on the registry, which only nodes and
the control plane can write. Every request still carries a media token the node verifies.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Longer than any node lives (a node makes a new one at every start).
VALIDITY = datetime.timedelta(days=397)
BACKDATE = datetime.timedelta(minutes=5)  # clock skew between the node and its callers


@dataclass(frozen=True)
class ControlCertificate:
    cert_pem: bytes
    key_pem: bytes

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert_pem.decode())

    @property
    def sha256(self) -> str:
        """Lower-case hex of SHA-256 over the DER certificate: what the registry publishes."""
        return fingerprint(self.der)

    def server_context(self) -> ssl.SSLContext:
        """A server context holding the certificate. `load_cert_chain` reads files only, so the
        key lives in a private temporary folder for the length of this call."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory(prefix="townhall-tls-") as folder:
            cert_file = os.path.join(folder, "cert.pem")
            key_file = os.path.join(folder, "key.pem")
            for path, data in ((cert_file, self.cert_pem), (key_file, self.key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            context.load_cert_chain(cert_file, key_file)
        return context


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(h for h in hosts if h):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def generate(common_name: str, hosts: Iterable[str]) -> ControlCertificate:
    """A fresh P-256 key and a self-signed certificate naming `hosts` (IPs or DNS names)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    names = _names(hosts)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return ControlCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
