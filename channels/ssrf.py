"""The SSRF guard: webhook destinations must be public internet hosts, never our own network.

A subscriber chooses the webhook URL, so without a guard anyone could make the service POST to the loopback
interface, the office LAN or the cloud metadata service (OWASP API7:2023). The guard works at three points:

1. **Subscriber creation** — `check_destination(url, allow_private=…)` (or `check_url` + `resolve_and_check`)
   refuses a URL whose host is a forbidden IP literal or a hostname that resolves only to forbidden addresses.
   A DNS failure refuses too: GitLab's guard was bypassed because it skipped the check when resolution failed
   (gitlab-ce#63959).
2. **Every attempt, IP literals** — aiohttp never calls the resolver for a URL with a bare IP (aiohttp
   discussion #10224), so the webhook adapter calls `check_url` before each POST. `literal_host_address`
   reads every form `inet_aton` accepts (`2130706433`, `0x7f000001`, `0177.1`, `127.1`) and bracketed IPv6,
   because resolvers and some HTTP stacks turn those into addresses too.
3. **Every attempt, hostnames** — `GuardedResolver` sits on the shared session's connector and drops forbidden
   addresses from each lookup. aiohttp connects to exactly the addresses the resolver returned, so a DNS
   rebinding attack (public answer at creation, 127.0.0.1 at send time) is refused at send time.

What is forbidden (`is_forbidden_address`): anything Python's `ipaddress` does not call global, plus an
explicit table of IANA special-purpose ranges (so the answer does not depend on the Python patch release):
RFC 1918, 100.64/10 (carrier-grade NAT, which `is_private` misses), loopback, link-local, multicast,
0.0.0.0/8, reserved, documentation ranges, IPv6 ULA and site-local. Addresses that embed an IPv4 address
(IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, 6to4 `2002::/16`, Teredo, NAT64 `64:ff9b::/96`)
are unwrapped and the embedded address is judged too.

`allow_private=True` (configuration `[channels.webhook] allow_private_networks`) opens private networks for an
installation whose partners live on an internal network, but never the cloud metadata addresses
(169.254.169.254, fd00:ec2::254, as gitlab#628701 proposes). Allowing a provider endpoint by name goes through
`exempt_hosts`, which exempts those exact hostnames only: allowing one local address must not open all of them
(gitlab#293733).

Errors: `ForbiddenDestination` (a ValueError, for validation paths: the API answers 422; its subclass
`UnsupportedURL` when the URL is not http(s) with a host at all) and
`DestinationRefusedError` (an OSError, raised by the resolver so that aiohttp wraps it in its own
`ClientConnectorDNSError`, which every adapter already handles). Messages never carry the URL or address:
they are contact data.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DNS_CHECK_TIMEOUT: Final = 5.0  # seconds a creation-time lookup may take before the URL is refused

METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

# IANA special-purpose registries (and ssrf_filter's list). Kept explicit because `is_global` changed
# between Python patch releases (gh-113171).
_FORBIDDEN_V4: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    )
)
_FORBIDDEN_V6: Final = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
        "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPAT: Final = ipaddress.IPv6Network("::/96")

# One inet_aton part: hex (0x…), octal (leading 0) or decimal.
_AT_PART: Final = re.compile(r"^(?:0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


class ForbiddenDestination(ValueError):
    """A webhook URL points where the service must not send (private, loopback, link-local, metadata…)."""


class UnsupportedURL(ForbiddenDestination):
    """The destination is not an http(s) URL with a host (nothing to do with where it points)."""


class DestinationRefusedError(OSError):
    """Raised by `GuardedResolver` when every resolved address is forbidden; aiohttp wraps it in
    `ClientConnectorDNSError` (its `os_error` is this exception)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the transition forms that route to it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # (server, client): the client is where packets end up
    if ip in _NAT64 or (ip in _IPV4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_forbidden_address(ip: IPAddress) -> bool:
    """True when `ip` is not a public internet address (or wraps one that is not)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:  # a zone only makes sense for link-local and friends
            return True
        embedded = _embedded_ipv4(ip)
        if embedded is not None and is_forbidden_address(embedded):
            return True
        if any(ip in net for net in _FORBIDDEN_V6):
            return True
    elif any(ip in net for net in _FORBIDDEN_V4):
        return True
    return (
        ip in METADATA_ADDRESSES
        or not ip.is_global
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
    )


def is_metadata_address(ip: IPAddress) -> bool:
    """True for the cloud metadata service, also when wrapped in an IPv6 transition form."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and embedded in METADATA_ADDRESSES:
            return True
        ip = ipaddress.IPv6Address(int(ip))  # drop a zone id before comparing
    return ip in METADATA_ADDRESSES


def is_refused(ip: IPAddress, *, allow_private: bool) -> bool:
    """The policy in one place: metadata is always refused, the rest unless private networks are allowed."""
    if allow_private:
        return is_metadata_address(ip)
    return is_forbidden_address(ip)


def _parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Read `host` the way `inet_aton` does: 1–4 parts, the last filling the remaining bytes."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_AT_PART.match(p) for p in parts):
        return None
    values: list[int] = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


@functools.lru_cache(maxsize=4096)  # a pure function of the host text; hosts repeat across sends
def literal_host_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally, or None for a hostname.

    Accepts bracketed or bare IPv6 (with an optional `%zone` or `%25zone`) and every IPv4 form `inet_aton`
    accepts: dotted, short dotted (`127.1`), decimal (`2130706433`), hex (`0x7f000001`), octal (`0177.0.0.1`).
    A single trailing dot is ignored, as resolvers ignore it.
    """
    value = host.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if ":" in value:
        value = value.replace("%25", "%", 1)
        try:
            return ipaddress.IPv6Address(value)
        except ValueError:
            return None
    if value.endswith(".") and not value.endswith(".."):
        value = value[:-1]
    return _parse_inet_aton(value) if value else None


def check_url(url: str, *, allow_private: bool) -> URL:
    """Refuse a URL that is not http(s) or whose host is a forbidden IP literal; the URL as parsed otherwise.

    Hostnames pass: they are judged at resolution (`GuardedResolver`, `resolve_and_check`).
    The host is read the way aiohttp reads it (yarl), and the caller hands aiohttp this very parse, so what is
    checked is what is connected to (and the URL is parsed once per send, not twice).
    """
    try:
        parsed = URL(url)
        host = parsed.raw_host
    except (ValueError, TypeError) as exc:
        raise UnsupportedURL("webhook URL cannot be parsed") from exc
    if parsed.scheme not in ("http", "https") or not host:
        raise UnsupportedURL("webhook URL must be http(s) with a host")
    _refuse_literal(host, allow_private)
    return parsed


def _refuse_literal(host: str, allow_private: bool) -> None:
    """ForbiddenDestination when `host` is an IP literal the policy refuses (a hostname passes: it is judged when
    resolved)."""
    ip = _refused_literal(host, allow_private)
    if ip is not None:
        raise ForbiddenDestination(f"webhook URL points to a {describe_address(ip)}, which is not allowed")


@functools.lru_cache(maxsize=4096)  # a pure function of the host text, asked before every send
def _refused_literal(host: str, allow_private: bool) -> IPAddress | None:
    """The IP address `host` names literally when the policy refuses it; None for an allowed one or a hostname."""
    ip = literal_host_address(host)
    return ip if ip is not None and is_refused(ip, allow_private=allow_private) else None


def describe_address(ip: IPAddress) -> str:
    """A contact-free name for the kind of forbidden address, for error messages."""
    if is_metadata_address(ip):
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and is_forbidden_address(embedded):
            return describe_address(embedded)
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_loopback, "loopback address"),
        (ip.is_unspecified or ip in ipaddress.IPv4Network("0.0.0.0/8"), "unspecified address"),
        (ip.is_link_local, "link-local address"),
        (ip.is_multicast, "multicast address"),
        (ip in ipaddress.IPv4Network("100.64.0.0/10"), "shared (carrier-grade NAT) address"),
        (ip.is_private, "private network address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local address"),
    )
    for matches, name in checks:
        if matches:
            return name
    return "reserved or non-public address"


def _addresses(results: Iterable[ResolveResult]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for result in results:
        try:
            found.append(ipaddress.ip_address(result["host"]))
        except ValueError:
            continue  # not an address we can judge: it will not be connected to either
    return found


async def resolve_and_check(
    host: str, port: int, *, allow_private: bool, resolver: AbstractResolver | None = None
) -> list[IPAddress]:
    """Resolve `host` and return its allowed addresses; ForbiddenDestination when none is allowed.

    Used when a subscriber registers a webhook. A lookup that fails or times out refuses the URL: skipping
    the check on a DNS error is exactly how GitLab's guard was bypassed (gitlab-ce#63959). `resolver`
    defaults to aiohttp's DefaultResolver, the one the sending session uses.
    """
    literal = literal_host_address(host)
    if literal is not None:
        _refuse_literal(host, allow_private)
        return [literal]
    own = resolver is None
    active = DefaultResolver() if resolver is None else resolver
    try:
        async with asyncio.timeout(DNS_CHECK_TIMEOUT):
            results = await active.resolve(host, port, family=socket.AF_UNSPEC)
    except (OSError, TimeoutError, UnicodeError, ValueError) as exc:
        raise ForbiddenDestination("webhook host could not be resolved") from exc
    finally:
        if own:
            await active.close()
    candidates = _addresses(results)
    allowed = [ip for ip in candidates if not is_refused(ip, allow_private=allow_private)]
    if not allowed:
        what = describe_address(candidates[0]) if candidates else "address we cannot check"
        raise ForbiddenDestination(f"webhook host resolves to a {what}, which is not allowed")
    return allowed


async def check_destination(url: str, *, allow_private: bool, resolver: AbstractResolver | None = None) -> None:
    """The whole creation-time check: `check_url`, then resolve a hostname with `resolve_and_check`."""
    check_url(url, allow_private=allow_private)
    parsed = URL(url)
    host, port = parsed.raw_host, parsed.port
    if host is None or port is None:  # check_url refused these already; this keeps the types honest
        raise UnsupportedURL("webhook URL must be http(s) with a host")
    await resolve_and_check(host.rstrip("."), port, allow_private=allow_private, resolver=resolver)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops forbidden addresses from every lookup.

    Put it on the connector of the shared session: `aiohttp.TCPConnector(resolver=GuardedResolver(...))`.
    aiohttp connects only to the addresses returned here, which defeats DNS rebinding; URLs with a bare IP
    never reach a resolver, which is why adapters also call `check_url`.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        exempt_hosts: Iterable[str] = (),
        inner: AbstractResolver | None = None,
    ) -> None:
        self._allow_private = allow_private
        # Configured provider endpoints (e.g. a gateway on the internal network), matched by exact name.
        self._exempt = frozenset(_normalise_host(h) for h in exempt_hosts)
        self._inner = inner  # created lazily: aiohttp's resolvers need a running loop

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        allow_private = self._allow_private or _normalise_host(host) in self._exempt
        allowed = [r for r in results if not self._refused(r["host"], allow_private)]
        if not allowed:
            raise DestinationRefusedError("destination refused: host resolves only to non-public addresses")
        return allowed

    @staticmethod
    def _refused(address: str, allow_private: bool) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True  # an answer we cannot judge is not connected to
        return is_refused(ip, allow_private=allow_private)

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _normalise_host(host: str) -> str:
    return host.strip().rstrip(".").lower()
