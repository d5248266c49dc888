"""The SSRF guard: which webhook destinations are refused, at creation and at every attempt. Offline: the only
name resolved for real is `localhost`; other lookups go through a resolver handed in like any backend."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from channels.ssrf import (
    DestinationRefusedError,
    ForbiddenDestination,
    GuardedResolver,
    check_destination,
    check_url,
    is_forbidden_address,
    literal_host_address,
    resolve_and_check,
)

FORBIDDEN_HOSTS = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[fd00:ec2::254]",
    "[fe80::1]",
    "[fc00::1]",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "0",
]


class StubResolver(AbstractResolver):
    """Answers every lookup with fixed addresses, or fails like a DNS error."""

    def __init__(self, *addresses: str, fail: bool = False) -> None:
        self.addresses = addresses
        self.fail = fail

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self.fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                          proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


# --- IP literals in URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_forbidden_literal_is_refused(host: str) -> None:
    """A webhook URL naming a private, loopback, link-local or metadata address, in any spelling, is refused."""
    with pytest.raises(ForbiddenDestination):
        check_url(f"http://{host}/hook", allow_private=False)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("0", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0"),
    ],
)
def test_literal_host_is_read_like_inet_aton(host: str, expected: str) -> None:
    """Numeric host spellings are read as the address a resolver would turn them into."""
    assert literal_host_address(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", ["example.org", "0x.example", "1.2.3.4.5", "256.256.256.256", "4294967296", "[::g]"])
def test_hostnames_are_not_literals(host: str) -> None:
    """Names and impossible numbers are not taken for addresses (they are left to the resolver)."""
    assert literal_host_address(host) is None


def test_hostname_passes_check_url_without_a_lookup() -> None:
    """A hostname is judged when it is resolved, not by check_url."""
    check_url("https://hooks.example.org/notify", allow_private=False)


def test_public_literal_passes() -> None:
    """A URL naming a public address is accepted."""
    check_url("https://93.184.216.34/hook", allow_private=False)


def test_non_http_scheme_is_refused() -> None:
    """Only http and https URLs are webhook destinations."""
    with pytest.raises(ForbiddenDestination):
        check_url("file:///etc/passwd", allow_private=False)


def test_refusal_message_names_the_kind_not_the_address() -> None:
    """The refusal says what kind of address it is and does not repeat the URL (it is contact data)."""
    with pytest.raises(ForbiddenDestination, match="loopback") as info:
        check_url("http://2130706433:8080/hook?token=s3cr3t", allow_private=False)
    assert "2130706433" not in str(info.value) and "s3cr3t" not in str(info.value)


def test_allow_private_lets_loopback_through() -> None:
    """With private networks allowed a loopback URL is accepted."""
    check_url("http://127.0.0.1:8099/hook", allow_private=True)


@pytest.mark.parametrize("host", ["169.254.169.254", "[fd00:ec2::254]", "[::ffff:169.254.169.254]"])
def test_allow_private_never_opens_metadata(host: str) -> None:
    """The cloud metadata service stays refused even when private networks are allowed."""
    with pytest.raises(ForbiddenDestination, match="metadata"):
        check_url(f"http://{host}/latest/meta-data/", allow_private=True)


# --- which addresses are forbidden ----------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_address_is_allowed(address: str) -> None:
    """Ordinary internet addresses are allowed."""
    assert not is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 wrapping 192.168.1.1
        "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_wrapped_private_ipv4_is_forbidden(address: str) -> None:
    """IPv6 forms that carry a private IPv4 address are forbidden like the address they carry."""
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["224.0.0.1", "239.1.2.3", "ff02::1", "240.0.0.1", "255.255.255.255", "fec0::1"])
def test_multicast_reserved_and_site_local_are_forbidden(address: str) -> None:
    """Multicast, reserved and IPv6 site-local addresses are forbidden."""
    assert is_forbidden_address(ipaddress.ip_address(address))


# --- the resolver on the sending session ----------------------------------------------------------------------


async def test_guarded_resolver_refuses_localhost() -> None:
    """`localhost` resolves to loopback, so the resolver refuses it."""
    resolver = GuardedResolver()
    with pytest.raises(DestinationRefusedError):
        await resolver.resolve("localhost", 80)
    await resolver.close()


async def test_guarded_resolver_allows_localhost_when_private_allowed() -> None:
    """With private networks allowed `localhost` resolves to loopback as usual."""
    resolver = GuardedResolver(allow_private=True)
    results = await resolver.resolve("localhost", 80)
    await resolver.close()
    hosts = {r["host"] for r in results}
    assert hosts and hosts <= {"127.0.0.1", "::1"}  # an empty answer would be a refusal, not "as usual"


async def test_guarded_resolver_drops_forbidden_answers() -> None:
    """A name answering with a public and a private address is connected to the public one only (rebinding)."""
    resolver = GuardedResolver(inner=StubResolver("10.0.0.7", "93.184.216.34"))
    results = await resolver.resolve("hooks.example.org", 443)
    assert [r["host"] for r in results] == ["93.184.216.34"]


async def test_exempt_host_only_opens_that_name() -> None:
    """Exempting a provider's host lets that name reach the private network, and no other name."""
    resolver = GuardedResolver(exempt_hosts={"Gateway.Internal"}, inner=StubResolver("10.0.0.7"))
    assert [r["host"] for r in await resolver.resolve("gateway.internal", 443)] == ["10.0.0.7"]
    with pytest.raises(DestinationRefusedError):
        await resolver.resolve("other.internal", 443)


async def test_exempt_host_still_never_reaches_metadata() -> None:
    """Even an exempt host is not connected to the cloud metadata address."""
    resolver = GuardedResolver(exempt_hosts={"gateway.internal"}, inner=StubResolver("169.254.169.254"))
    with pytest.raises(DestinationRefusedError):
        await resolver.resolve("gateway.internal", 80)


# --- the check at subscriber creation --------------------------------------------------------------------------


async def test_creation_refuses_a_name_resolving_only_to_loopback() -> None:
    """Registering http://localhost/… is refused: the name resolves only to loopback."""
    with pytest.raises(ForbiddenDestination, match="loopback"):
        await check_destination("http://localhost:8080/hook", allow_private=False)


async def test_creation_refuses_when_dns_fails() -> None:
    """A name that cannot be resolved is refused, never waved through unchecked."""
    with pytest.raises(ForbiddenDestination, match="could not be resolved"):
        await resolve_and_check("hooks.example.org", 443, allow_private=False, resolver=StubResolver(fail=True))


async def test_creation_accepts_a_public_name() -> None:
    """A name resolving to a public address is accepted, with that address."""
    found = await resolve_and_check("hooks.example.org", 443, allow_private=False,
                                    resolver=StubResolver("93.184.216.34"))
    assert found == [ipaddress.ip_address("93.184.216.34")]


async def test_creation_refuses_a_forbidden_literal() -> None:
    """Registering a URL with a private IP literal is refused without any lookup."""
    with pytest.raises(ForbiddenDestination, match="private"):
        await check_destination("https://192.168.0.10/hook", allow_private=False)
