"""SSRF guard for every outbound request to a user-given URL.

:func:`check_url` parses the URL, refuses odd host forms (integer, octal or hex IPv4
literals such as ``2130706433``, IPv6 zone ids), resolves the name **once**, and refuses
it if *any* answer is not a public unicast address; the caller then connects to the
address that was checked (:class:`Target`), so a second DNS answer (rebinding) cannot
change where the request goes.

``ipaddress.is_global`` is not enough (reference notes §E3): multicast, NAT64
(``64:ff9b::/96``), 6to4 (``2002::/16``) and a few special IPv4 blocks pass it. So an
address must be global, not multicast, reserved, private, loopback, link-local or
unspecified, and the IPv4 address embedded in IPv4-mapped, 6to4, Teredo and NAT64 forms
must pass the same test. ``allow_private`` (``AEOS_ALERTING_ALLOW_PRIVATE_TARGETS``)
accepts private and loopback ranges for on-premises installs and tests; multicast,
unspecified and reserved addresses stay refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_ODD_IPV4 = re.compile(r"^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$", re.IGNORECASE)


class BlockedTargetError(ValueError):
    """The URL may not be requested (the message says why)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: connect to ``address``; send ``host`` as Host and TLS server name."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        netloc = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{netloc}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    def host_header(self) -> str:
        """The Host header of the original URL."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64 or addr in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def refusal(addr: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``addr`` may not be a target, or None if it may."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            return "an IPv6 zone id"
        inner = _embedded_v4(addr)
        if inner is not None:
            why = refusal(inner, allow_private=allow_private)
            return None if why is None else f"{why} (embedded in {addr})"
    if addr.is_multicast:
        return f"{addr} is multicast"
    if addr.is_unspecified or addr.is_reserved:
        return f"{addr} is reserved or unspecified"
    if addr.is_global:
        return None
    if allow_private and (addr.is_private or addr.is_loopback or addr.is_link_local):
        return None
    return f"{addr} is not a public address"


def check_url(url: str, *, allow_private: bool = False) -> Target:
    """Checks ``url`` and resolves its host once (see the module docstring).

    Raises:
        BlockedTargetError: a bad URL, an odd host form, an unresolvable name, or an
            address that is not public.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedTargetError(f"only http and https URLs are allowed, not {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise BlockedTargetError("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedTargetError("the URL has a bad port") from None
    if "%" in host:
        raise BlockedTargetError("IPv6 zone ids are not allowed")
    addresses = _resolve(host, port)
    for addr in addresses:
        why = refusal(addr, allow_private=allow_private)
        if why:
            raise BlockedTargetError(f"{host} is refused: {why}")
    return Target(url, parts.scheme, host, port, addresses[0])


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if _ODD_IPV4.match(host):
        raise BlockedTargetError(f"{host!r} is an IPv4 address in an unusual form")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedTargetError(f"{host} does not resolve: {exc}") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if addr not in found:
            found.append(addr)
    if not found:
        raise BlockedTargetError(f"{host} does not resolve")
    return found
