"""Where webhooks may go: public addresses only, checked at registration and again at each connection.

A webhook URL is the caller's choice and the API POSTs to it from inside the deployment, so without a rule
an API key could make the server reach loopback services, the cloud metadata address (169.254.169.254) or the
private network. Literal addresses are refused at `/add_webhook`; names are resolved when the deliverer
connects, and the connection goes to the address that was checked, so a name that later resolves to a
private address (DNS rebinding) is refused too. `MAILROOM_API_ALLOW_PRIVATE_WEBHOOKS=1` lifts the rule, for
tests and a local demo whose receivers listen on 127.0.0.1.
"""

import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

ALLOW_SETTING = "MAILROOM_API_ALLOW_PRIVATE_WEBHOOKS=1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address: not loopback, link-local, private, shared, reserved, multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    return address.is_global and not address.is_multicast


def literal_host_problem(host: str) -> str | None:
    """Why a URL's host cannot be a webhook target on its face (a non-public IP, or localhost), or None."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"the webhook URL's host {host} is this machine"
    try:
        address: IPAddress = ipaddress.ip_address(name)
    except ValueError:
        try:
            # The C library's older spellings of IPv4, which the resolver turns into addresses without DNS:
            # 0x7f000001, 2130706433, 127.1 and 0177.0.0.1 are all 127.0.0.1.
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None  # a name: checked when the deliverer resolves it
    if not is_public(address):
        return f"the webhook URL's host {host} is not a public address"
    return None


class _PublicOnlyBackend(httpcore.SyncBackend):
    """httpcore's network backend, resolving the host itself and connecting only to a public address."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve the webhook host {host}: {error}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
        refused = [a for a in addresses if not is_public(a)]
        if refused or not addresses:
            # One private answer among public ones is refused too: the resolver may alternate.
            raise httpcore.ConnectError(
                f"the webhook host {host} resolves to {refused[0] if refused else 'nothing'}, "
                f"which is not a public address ({ALLOW_SETTING} allows it)"
            )
        # TLS still verifies and sends the name: httpcore passes the URL's host as server_hostname.
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


class PublicOnlyTransport(httpx.HTTPTransport):
    """httpx's transport (its default TLS verification, no proxies from the environment) on the guard."""

    def __init__(self, *, max_connections: int = 20) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, so the pool it built is replaced by the same pool on ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=_PublicOnlyBackend(),
        )
