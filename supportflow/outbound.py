"""Outbound HTTP to addresses someone else chose (webhook subscriptions, Discord), safe against SSRF.

``url_vet`` resolves the host (every A/AAAA record) and refuses the URL if *any* address is not a
public unicast one: private, loopback, link-local, multicast, reserved, unspecified, CGNAT
(100.64/10), IPv4-mapped private IPv6, or a cloud metadata address. ``post`` then connects to the
vetted address itself (the DNS answer cannot change between the check and the connection — no
rebinding), sends the original name as ``Host`` and TLS SNI (so certificates are still verified
against the name), never follows redirects (``http.client`` has no redirect handling), uses short
timeouts and reads at most ``max_response_bytes`` of the answer.

Ports: 80, 443 and the unprivileged range 1024–65535. Other privileged ports (22 SSH, 25 SMTP…)
are refused: no webhook receiver needs them. ``allow_private=True`` (``WEBHOOKS_ALLOW_PRIVATE`` in
development and tests, or a URL the operator configured, like ``SLACK_API_BASE``) skips only the
address checks.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack…
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    }
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
ALLOWED_SCHEMES = ("http", "https")
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024


class UnsafeURLError(ValueError):
    """The URL may never be called (bad scheme, credentials, port, or a non-public address).
    ``str(error)`` is safe to show to whoever entered the URL."""


class TransportError(Exception):
    """The call could not be completed (DNS, connection, TLS, timeout): worth retrying later."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    duration_ms: int


def address_is_blocked(address: str) -> bool:
    """True unless ``address`` is a public unicast address we may call."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return address_is_blocked(str(mapped))
        if ip.teredo is not None:
            return True
    return (
        ip in METADATA_ADDRESSES
        or ip in CGNAT
        or not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransportError(f"cannot resolve {host}: {exc}") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TransportError(f"{host} has no address")
    return addresses


def url_check_syntax(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request path of ``url``; UnsafeURLError if its form is not allowed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURLError("Only http:// and https:// URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("Credentials in the URL are not allowed; the signature authenticates us.")
    host = parts.hostname
    if not host:
        raise UnsafeURLError("The URL has no host.")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if port not in (80, 443) and not 1024 <= port <= 65535:
        raise UnsafeURLError(f"Port {port} is not allowed (use 80, 443 or 1024–65535).")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.scheme, host, port, path


def url_vet(url: str, *, allow_private: bool) -> Target:
    """Check ``url`` and resolve it to the addresses we will connect to.

    Raises UnsafeURLError when it may never be called, TransportError when its name does not
    resolve now (which may change: at save time the caller decides whether that is acceptable).
    """
    scheme, host, port, path = url_check_syntax(url)
    addresses = _resolve(host, port)
    if not allow_private:
        blocked = [a for a in addresses if address_is_blocked(a)]
        if blocked:
            raise UnsafeURLError(
                f"{host} resolves to {', '.join(blocked)}: private, loopback, link-local, "
                "multicast, reserved and metadata addresses are not allowed."
            )
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def _connection(target: Target, address: str, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def pinned(addr, *args, **kwargs):  # connect to the vetted address, keep the name for Host/SNI
        return socket.create_connection((address, addr[1]), *args, **kwargs)

    conn._create_connection = pinned  # type: ignore[attr-defined]
    return conn


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_private: bool,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Response:
    """POST ``body`` to ``url`` once. Any status is returned (3xx included: redirects are not
    followed); UnsafeURLError and TransportError as in ``url_vet`` and for network failures."""
    target = url_vet(url, allow_private=allow_private)
    started = time.monotonic()
    last_error: Exception | None = None
    for address in target.addresses:
        conn = _connection(target, address, timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:  # try the next vetted address
                last_error = exc
                continue
            try:
                conn.request("POST", target.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(max_response_bytes)
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc
            return Response(
                status=response.status,
                body=data,
                headers={k.lower(): v for k, v in response.getheaders()},
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        finally:
            conn.close()
    raise TransportError(f"cannot connect to {target.host}: {last_error}"[:300])
