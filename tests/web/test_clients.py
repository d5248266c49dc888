"""Which address is the client (notifier.web.clients.client_address): X-Forwarded-For read from the right, only
when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

import pytest

from notifier.web.clients import client_address

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),  # one proxy
    ("127.0.0.1", ["203.0.113.1, 198.51.100.7"], "198.51.100.7"),  # a hop the client wrote itself: ignored
    ("127.0.0.1", ["198.51.100.7, 10.1.2.3"], "198.51.100.7"),  # two trusted proxies in a row
    ("127.0.0.1", ["198.51.100.7", "10.1.2.3"], "198.51.100.7"),  # the header sent twice: one list
    ("127.0.0.1", ["10.4.4.4, 10.1.2.3"], "10.4.4.4"),  # every hop a proxy: the leftmost
    ("127.0.0.1", ["not-an-address, 10.1.2.3"], "10.1.2.3"),  # garbage: the last hop a proxy vouched for
    ("127.0.0.1", ["[2001:db8::1]:4431"], "2001:db8::1"),  # bracketed IPv6 with a port
    ("127.0.0.1", ["198.51.100.7:51234"], "198.51.100.7"),  # IPv4 with a port
    ("::ffff:127.0.0.1", ["198.51.100.7"], "198.51.100.7"),  # an IPv4-mapped peer is that IPv4 address
    ("127.0.0.1", [], "127.0.0.1"),  # no header: the proxy itself
    ("198.51.100.20", ["203.0.113.1"], "198.51.100.20"),  # an untrusted peer's header proves nothing
])
def test_the_rightmost_untrusted_hop_is_the_client(peer: str, forwarded: list[str], client: str) -> None:
    """The first address from the right that is not a trusted proxy is the client."""
    assert client_address(peer, forwarded, TRUSTED) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    """No trusted proxies configured: the header is never read."""
    assert client_address("127.0.0.1", ["198.51.100.7"], []) == "127.0.0.1"
