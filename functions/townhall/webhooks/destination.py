"""Where a webhook may be sent, and sending it there without being turned against our network.

A subscription's URL is checked when it is saved (`check_url`: https, a host, a length, no
credentials, no address literal outside the public internet) and again at every attempt,
because DNS answers change (`post`): the host is resolved, **every** address it resolves to
must be public (not private, loopback, link-local (the metadata service, 169.254.169.254 and
fd00:ec2::254), shared, multicast, reserved or unspecified, nor an IPv6 form of those), and
the connection goes to the address that was checked, not to a second lookup. Redirects are
never followed: a 3xx is a failed attempt like any other non-2xx answer.

In the twin, `allow_loopback` lets receivers on 127.0.0.0/8 and ::1 (and plain http) through;
production never has it (the CDK stacks never set WEBHOOK_ALLOW_LOOPBACK; tests/infra checks).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from townhall.errors import InvalidInput

MAX_URL_LENGTH = 1000
# What is read of a receiver's answer: the status matters, the body only as a hint in the log.
MAX_ANSWER_BYTES = 4096
USER_AGENT = "Townhall-Webhooks/1"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to, as getaddrinfo gives them.
Resolver = Callable[[str, int], list[str]]


class DestinationRefused(Exception):
    """The URL resolves to an address the sender never calls."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with its query


@dataclass(frozen=True)
class Answer:
    status: int
    # A short, printable excerpt of the answer's body (never the request's).
    excerpt: str


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not address.is_multicast


def allowed(address: Address, allow_loopback: bool) -> bool:
    return is_public(address) or (allow_loopback and address.is_loopback)


def check_url(url: str, allow_loopback: bool) -> Target:
    """The URL's parts, or InvalidInput saying what is wrong with it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url must be 1 to {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise InvalidInput("url must be printable ASCII without spaces (encode it)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"url is not valid: {exc}") from None
    schemes = ("https", "http") if allow_loopback else ("https",)
    if parts.scheme not in schemes:
        raise InvalidInput("url must be https")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry credentials: the signature authenticates us")
    if parts.fragment:
        raise InvalidInput("url must not have a fragment")
    host = (parts.hostname or "").lower()
    if not host or len(host) > 253:
        raise InvalidInput("url must name a host")
    address = _literal(host)
    if address is not None:
        if not allowed(address, allow_loopback):
            raise InvalidInput("url's address is not a public internet address")
    elif not all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        for label in host.split(".")
    ):
        # Whether a name is public is decided by what it resolves to, at every attempt.
        raise InvalidInput("url's host is not a valid host name")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def checked_addresses(
    target: Target, allow_loopback: bool, resolve: Resolver = system_resolver
) -> list[Address]:
    """Every address the host resolves to, if all are allowed; DestinationRefused otherwise
    (one bad address refuses them all: an attacker's DNS answer mixes them on purpose)."""
    literal = _literal(target.host)
    try:
        found = (
            [literal]
            if literal
            else [ipaddress.ip_address(a.split("%")[0]) for a in resolve(target.host, target.port)]
        )
    except (OSError, UnicodeError, ValueError) as exc:
        raise DestinationRefused(f"{target.host} does not resolve") from exc
    if not found:
        raise DestinationRefused(f"{target.host} does not resolve")
    refused = [a for a in found if not allowed(a, allow_loopback)]
    if refused:
        raise DestinationRefused(f"{target.host} resolves to a non-public address ({refused[0]})")
    return found


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to one checked address, whatever the Host header says."""

    def __init__(self, address: Address, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    def __init__(self, address: Address, host: str, port: int, timeout: float) -> None:
        super().__init__(address, host, port, timeout)
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_loopback: bool,
    resolve: Resolver = system_resolver,
) -> Answer:
    """POST `body` to `url` through a checked address; the answer (any status: no redirect is
    followed). Raises DestinationRefused, or OSError (refused, unreachable, timed out: the
    whole attempt is bounded by `timeout`)."""
    try:
        target = check_url(url, allow_loopback)
    except InvalidInput as exc:  # a URL saved under other rules (the twin's loopback setting)
        raise DestinationRefused(str(exc)) from None
    deadline = time.monotonic() + timeout
    address = checked_addresses(target, allow_loopback, resolve)[0]
    factory = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = factory(address, target.host, target.port, timeout)
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "connection": "close",
            },
        )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the receiver took too long")
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
        response = connection.getresponse()
        excerpt = b""
        while len(excerpt) < MAX_ANSWER_BYTES:
            if time.monotonic() > deadline:
                raise TimeoutError("the receiver took too long to answer")
            chunk = response.read1(MAX_ANSWER_BYTES - len(excerpt))
            if not chunk:
                break
            excerpt += chunk
        text = excerpt.decode("utf-8", "replace")
        return Answer(response.status, "".join(c for c in text[:200] if c.isprintable()))
    except (http.client.HTTPException, ssl.SSLError) as exc:
        raise OSError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
