"""coturn in the twin: the TURN server a participant behind a firewall relays through.

The twin starts Debian's `turnserver` (coturn) with the scheme AWS runs (docs/turn.md): a
secret shared with the signaling function, from which signaling mints each participant's
credentials (`townhall.media.turn`); TURN over UDP and TCP on one port, and over TLS on another
with a certificate the twin issues itself from a CA of its own (`certificates`): a browser that
is to use TURN over TLS trusts that CA as a developer trusts a local CA (the TURN test puts it
in its Chromium's certificate store; `turn/ca.pem` in the data folder).

Everything lives in the data folder's `turn/`: the secret (kept across restarts, mode 0600),
the CA and the server certificate, coturn's configuration (it holds the secret, so 0600 too)
and its database; coturn's log is `logs/turnserver.log`.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

TURNSERVER = "turnserver"
REALM = "townhall.local"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
# Relay ports coturn allocates from; the twin's nodes and browsers are all local.
RELAY_PORTS = (49160, 49659)
CERTIFICATE_DAYS = 30


def available() -> bool:
    return shutil.which(TURNSERVER) is not None


@dataclass(frozen=True)
class TurnAddresses:
    host: str
    port: int  # UDP and TCP
    tls_port: int

    @property
    def urls(self) -> tuple[str, ...]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"turn:{host}:{self.port}?transport=udp",
            f"turn:{host}:{self.port}?transport=tcp",
            f"turns:{host}:{self.tls_port}?transport=tcp",
        )


class LocalTurnServer:
    """A coturn process for one twin. `start()` returns once it accepts TLS connections."""

    def __init__(self, data_dir: Path, logs_dir: Path, host: str) -> None:
        self.dir = data_dir / "turn"
        self.logs_dir = logs_dir
        self.host = host
        self.addresses = TurnAddresses(host, _free_port(host), _free_port(host))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def secret_file(self) -> Path:
        return self.dir / "secret"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        secret = _secret(self.secret_file)
        cert, key = certificates(self.dir, self.host)
        config = self.dir / "turnserver.conf"
        _write_private(config, self._config(secret, cert, key))
        with (self.logs_dir / "turnserver.log").open("ab") as out:
            self._process = subprocess.Popen(
                [TURNSERVER, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _accepts(self.host, self.addresses.tls_port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"coturn did not start; see {self.logs_dir}/turnserver.log")
            time.sleep(0.05)
        log.info("coturn serving %s", " ".join(self.addresses.urls))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def _config(self, secret: str, cert: Path, key: Path) -> str:
        lines = [
            f"listening-ip={self.host}",
            f"relay-ip={self.host}",
            f"listening-port={self.addresses.port}",
            f"tls-listening-port={self.addresses.tls_port}",
            # No second ports for NAT discovery (RFC 5780): they would collide with others.
            "no-rfc5780",
            "use-auth-secret",
            f"static-auth-secret={secret}",
            f"realm={REALM}",
            f"cert={cert}",
            f"pkey={key}",
            "no-tlsv1",
            "no-tlsv1_1",
            "no-dtls",
            "no-cli",
            "fingerprint",
            "no-multicast-peers",
            "no-software-attribute",
            f"min-port={RELAY_PORTS[0]}",
            f"max-port={RELAY_PORTS[1]}",
            f"userdb={self.dir / 'turndb'}",
            f"pidfile={self.dir / 'turnserver.pid'}",
            f"log-file={self.logs_dir / 'turnserver.log'}",
            "simple-log",
            "no-stdout-log",
        ]
        if ipaddress.ip_address(self.host).is_loopback:
            # The twin's media nodes listen on loopback too: relaying to them is the point.
            lines.append("allow-loopback-peers")
        return "\n".join(lines) + "\n"


def certificates(directory: Path, host: str) -> tuple[Path, Path]:
    """The twin's CA (`ca.pem`, made once) and a server certificate for `host` signed by it
    (`server.pem`, `server.key`), made again when the host changed or it nears its end."""
    ca_cert_file, ca_key_file = directory / "ca.pem", directory / "ca.key"
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    now = datetime.datetime.now(datetime.UTC)
    if ca_cert_file.exists() and ca_key_file.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_cert_file.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Townhall twin local CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_file, _key_pem(ca_key))
        ca_cert_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    if _still_good(cert_file, key_file, host, now):
        return cert_file, key_file
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_file, _key_pem(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def _still_good(cert_file: Path, key_file: Path, host: str, now: datetime.datetime) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return _san(host) in names and cert.not_valid_after_utc - now > datetime.timedelta(days=1)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _secret(path: Path) -> str:
    """The shared secret, made once and kept across restarts (credentials stay valid)."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    _write_private(path, value + "\n")
    return value


def _write_private(path: Path, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _free_port(host: str) -> int:
    """A port free for both TCP and UDP on `host` (TURN listens on both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):  # bounded: a clash needs another process to take the port meanwhile
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
