"""One GET of a timetable feed: under one deadline, and only from addresses the portal may reach.

A feed's address is typed by an institution's administrator, so the portal must not become a
way to reach what only it can reach: itself, its cloud's metadata service (169.254.169.254)
or the private network around it. Every hop, redirects included, is checked the same way:
the host is resolved, every address it resolves to is checked, and the connection is made to
a checked address, with the host's name kept for the Host header, TLS's SNI and the
certificate check. So a name that resolves differently between the check and the connection
(DNS rebinding) gains nothing: the address checked is the address connected to. An on-premises
MyTimetable on a private network is reached by listing its network
(``PORTAL_FEED_ALLOWED_NETWORKS``).

The deadline covers the whole fetch (resolving, connecting, every hop, the body): a socket
timeout only bounds each wait, so a server that sends a byte now and then, in its headers or
its body, would hold a fetch indefinitely. A watchdog shuts the connection at the deadline.

urllib3 is used directly (requests, which the rest of the portal uses, cannot connect to a
given address while keeping the host's name without reaching into its internals). Proxy
settings (``HTTPS_PROXY``) are not used for feeds: a proxy would connect to an address the
portal never checked.
"""

import contextlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from urllib.parse import urljoin, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError
from urllib3.util import make_headers
from urllib3.util.ssl_match_hostname import CertificateError

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[Address]]

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
# Networks refused beyond what ``ipaddress`` calls private or not global: unique-local IPv6
# (fc00::/7) and the deprecated site-local fec0::/10, named here so the rule reads in full.
_LOCAL_IPV6 = (ipaddress.ip_network("fc00::/7"), ipaddress.ip_network("fec0::/10"))
# IPv6 addresses that carry an IPv4 address a gateway connects to: NAT64's well-known prefix.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

UNREACHABLE = "The timetable feed could not be reached."
NOT_FOUND = "The timetable feed's server name could not be found."
NOT_ALLOWED = (
    "The timetable feed's address is on a local or private network, which the portal does "
    "not fetch from."
)
NOT_HTTP = "The timetable feed's address must start with http:// or https://."
TOO_MANY_REDIRECTS = "The timetable feed redirected too many times."
UNTRUSTED = "The timetable feed's server could not prove its identity (its certificate)."


class FetchError(Exception):
    """The feed could not be fetched; ``reason`` says why in plain words, for anyone."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    """The last hop's answer: its status, headers, and its body when the status was 200."""

    status: int
    headers: Mapping[str, str]  # case-insensitive, as urllib3 gives them
    body: bytes


def refused(address: Address, allowed: Iterable[Network] = ()) -> bool:
    """Whether the portal must not connect to ``address``: loopback, link-local, private,
    unique-local, unspecified, multicast, reserved or otherwise not global, also when
    carried in an IPv6 address (IPv4-mapped, NAT64, 6to4, Teredo), unless it is in one of
    the ``allowed`` networks."""
    candidates = [address, *_carried_ipv4(address)]
    if any(candidate in network for candidate in candidates for network in allowed):
        return False
    return any(_local(candidate) for candidate in candidates)


def _local(address: Address) -> bool:
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or not address.is_global
        or any(address in network for network in _LOCAL_IPV6 if address.version == 6)
    )


def _carried_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    if address.version == 4:
        return []
    carried = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        carried.extend(address.teredo)
    if address in _NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [found for found in carried if found is not None]


def resolve(host: str, port: int) -> list[Address]:
    """The addresses ``host`` resolves to for a TCP connection, in the resolver's order."""
    addresses = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _Deadline:
    """A point in time after which the fetch gives up, and the words for giving up."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; FetchError when there are none."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.error()
        return left

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def error(self) -> FetchError:
        return FetchError(f"The timetable feed did not answer within {self.seconds:g} seconds.")


class _Watchdog:
    """Shuts a connection's socket down at the deadline, which wakes a read blocked on it.

    The socket is taken when it is there (a TLS handshake already runs on it) and kept: after
    an answer that closes the connection, the connection lets go of its socket while the
    response still reads from it.
    """

    def __init__(self, connection: HTTPConnection, deadline: _Deadline):
        self.connection = connection
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.timer = threading.Timer(deadline.remaining(), self._cut)
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *_):
        self.timer.cancel()

    def hold(self) -> None:
        if self.connection.sock is not None:
            self.sockets.append(self.connection.sock)

    def _cut(self) -> None:
        self.fired = True
        for sock in [*self.sockets, self.connection.sock]:
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


def get(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    max_bytes: int,
    allowed: Iterable[Network] = (),
    resolver: Resolver = resolve,
    ca_certs: str | None = None,
) -> Answer:
    """GET ``url`` within ``timeout`` seconds in all, following up to MAX_REDIRECTS redirects.

    Every hop's host must resolve only to addresses that are not ``refused``. The body is
    read for a 200 only, up to ``max_bytes``. Raises FetchError; what went wrong in detail
    (the operating system's words, the address refused) goes to the log, not to the reason.
    """
    deadline = _Deadline(timeout)
    allowed = tuple(allowed)
    for _hop in range(MAX_REDIRECTS + 1):
        answer = _get_once(url, headers, deadline, max_bytes, allowed, resolver, ca_certs)
        location = answer.headers.get("Location")
        if answer.status not in REDIRECTS or not location:
            return answer
        url = urljoin(url, location)
    raise FetchError(TOO_MANY_REDIRECTS)


def _get_once(url, headers, deadline, max_bytes, allowed, resolver, ca_certs) -> Answer:
    """One hop: check ``url``'s addresses, then ask the first that answers."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number or out of range
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise FetchError(NOT_HTTP)
    host, authority = parts.hostname, parts.netloc.rpartition("@")[2]
    origin = f"{parts.scheme}://{authority}"
    if _is_address(host):
        addresses = [ipaddress.ip_address(host)]
    else:
        addresses = _resolve_within(resolver, host, port, deadline, origin)
    for address in addresses:
        if refused(address, allowed):
            log.warning("Feed %s: %s is refused (PORTAL_FEED_ALLOWED_NETWORKS)", origin, address)
            raise FetchError(NOT_ALLOWED)
    request_headers = {"Host": authority, **make_headers(accept_encoding=True), **headers}
    if parts.username is not None:
        request_headers.update(make_headers(basic_auth=f"{parts.username}:{parts.password or ''}"))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    failure: Exception | None = None
    for address in addresses:
        connection = _connection(parts.scheme, host, address, port, deadline, ca_certs)
        try:
            return _exchange(connection, target, request_headers, max_bytes, deadline)
        except (OSError, HTTPError, HTTPException, CertificateError) as error:
            log.warning("Feed %s at %s: %s", origin, address, _words(error))
            if _untrusted(error):
                raise FetchError(UNTRUSTED) from None
            failure = error
    raise FetchError(UNREACHABLE) from failure


def _exchange(connection, target, headers, max_bytes, deadline: _Deadline) -> Answer:
    """Send the GET on ``connection`` and read the answer, all before the deadline."""
    with _Watchdog(connection, deadline) as watchdog:
        try:
            connection.connect()
            watchdog.hold()
            connection.request("GET", target, headers=headers, preload_content=False)
            with connection.getresponse() as response:
                body = _read_body(response, max_bytes, deadline) if response.status == 200 else b""
        except (OSError, HTTPError, HTTPException, CertificateError):
            # A connection shut by the watchdog fails in whatever way it was cut.
            if watchdog.fired or deadline.passed():
                raise deadline.error() from None
            raise
        finally:
            connection.close()
    if watchdog.fired:  # a cut between two chunks reads as the end of the body
        raise deadline.error()
    return Answer(response.status, response.headers, body)


def _resolve_within(resolver, host, port, deadline, origin) -> list[Address]:
    """``resolver(host, port)``, given up at the deadline (the system resolver has no timeout
    of its own: the lookup is left to finish in the background)."""
    outcome: dict = {}

    def work():
        try:
            outcome["addresses"] = resolver(host, port)
        except Exception as error:  # reported below, in the fetching thread
            outcome["error"] = error

    thread = threading.Thread(target=work, name="feed-resolve", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if thread.is_alive():
        raise deadline.error()
    if "error" in outcome or not outcome["addresses"]:
        log.warning("Feed %s: the name did not resolve: %s", origin, outcome.get("error"))
        raise FetchError(NOT_FOUND)
    return outcome["addresses"]


def _connection(scheme, host, address, port, deadline, ca_certs) -> HTTPConnection:
    """A connection to ``address`` that speaks to ``host``: for https, SNI and the
    certificate check use the host's name, not the address."""
    timeout = deadline.remaining()
    if scheme == "http":
        return HTTPConnection(str(address), port, timeout=timeout)
    name = host.encode("idna").decode("ascii") if not _is_address(host) else host
    return HTTPSConnection(
        str(address),
        port,
        timeout=timeout,
        server_hostname=name,
        assert_hostname=name,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs,
    )


def _read_body(response, max_bytes: int, deadline: _Deadline) -> bytes:
    """The body, as it arrives; FetchError past ``max_bytes`` or past the deadline."""
    too_large = FetchError(f"The timetable feed is larger than {_size(max_bytes)}.")
    # Content-Length can be wrong or absent, so the count while reading is what decides;
    # the header only lets an announced oversized feed fail without downloading it.
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        raise too_large
    chunks = []
    received = 0
    while chunk := response.read1(_CHUNK_BYTES):
        received += len(chunk)
        if received > max_bytes:
            raise too_large
        if deadline.passed():
            raise deadline.error()
        chunks.append(chunk)
    return b"".join(chunks)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _untrusted(error: BaseException) -> bool:
    return any(
        isinstance(cause, ssl.SSLCertVerificationError | CertificateError)
        for cause in _causes(error)
    )


def _words(error: BaseException) -> str:
    """The operating system's words for a network error, for the log."""
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return str(error)


def _causes(error: BaseException):
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and not any(current is earlier for earlier in seen):
        seen.append(current)
        yield current
        current = current.__cause__ or current.__context__


def _size(count: int) -> str:
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"
