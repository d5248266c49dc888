"""Who is asking: the client address of a request, the one helper every limit keyed by client uses (sign-up,
resend and /manage codes, dashboard sign-in).

Behind a reverse proxy every request comes from the proxy. `[server] trusted_proxies` lists the proxies'
addresses or networks; only when the direct peer is one of them is `X-Forwarded-For` read, from the right: each
hop a trusted proxy added is skipped, and the first address that is not a trusted proxy is the client (an address
further left was written by that client and proves nothing). With no trusted proxies, or a peer that is not one,
the header is ignored: anyone can send it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web
from pydantic import IPvAnyNetwork

from notifier.web.state import SERVICE

UNKNOWN = "unknown"
_CLIENT = web.RequestKey("client_address", str)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    value = text.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:51234
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[IPvAnyNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def client_address(peer: str | None, forwarded: Iterable[str], proxies: Sequence[IPvAnyNetwork]) -> str:
    """The client of a request from `peer` carrying these `X-Forwarded-For` header values."""
    current = _address(peer or "")
    if current is None:
        return peer or UNKNOWN
    if not proxies or not _trusted(current, proxies):
        return str(current)
    hops = [hop for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # not an address: the proxy that passed it on is the last we can vouch for
            return str(current)
        current = address
        if not _trusted(current, proxies):
            return str(current)
    return str(current)  # every hop a trusted proxy: the leftmost is as far as anyone can tell


def client_of(request: web.Request) -> str:
    """The client address of `request` (worked out once per request)."""
    if _CLIENT not in request:
        proxies = request.app[SERVICE].settings.server.trusted_proxies
        request[_CLIENT] = client_address(request.remote, request.headers.getall("X-Forwarded-For", []), proxies)
    return request[_CLIENT]
