"""Fetching a feed: one deadline for the whole fetch, and no local or private address at any
hop unless its network is allowed."""

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.sync import fetching

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
# 127.0.0.1 stands in for a public address in the tests that resolve names themselves.
TEST_SERVER = (ipaddress.ip_network("127.0.0.1/32"),)
BODY = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


class Handler(BaseHTTPRequestHandler):
    """Answers ``/feed.ics``, redirects from ``/redirect?to=...`` and loops at ``/loop``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        """Quiet: the tests read answers, not the server's log."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host")))
        if self.path.startswith("/redirect?to="):
            self.answer(302, [("Location", self.path.removeprefix("/redirect?to="))])
        elif self.path == "/loop":
            self.answer(302, [("Location", "/loop")])
        elif self.path == "/feed.ics":
            self.answer(200, [("Content-Type", "text/calendar")], BODY)
        else:
            self.answer(404)

    def answer(self, status, headers=(), body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(server):
    server.seen = []
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1; ``seen`` holds each request's path and Host header."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = serve(httpd)
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def tls_server(pki):
    """The same server over https, with the test PKI's certificate (127.0.0.1, localhost)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = pki.ssl_context().wrap_socket(httpd.socket, server_side=True)
    thread = serve(httpd)
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class Resolver:
    """A stand-in for DNS: each name resolves to the addresses given, in turn per lookup."""

    def __init__(self, **names: list[list[str]]):
        self.names = {name.replace("_", "."): answers for name, answers in names.items()}
        self.lookups: list[str] = []

    def __call__(self, host, port):
        self.lookups.append(host)
        answers = self.names.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers[min(self.lookups.count(host), len(answers)) - 1]
        return [ipaddress.ip_address(address) for address in answer]


def get(url, **kwargs):
    settings = {"timeout": 5, "max_bytes": 1024 * 1024, "allowed": LOOPBACK} | kwargs
    return fetching.get(url, {"Accept": "text/calendar"}, **settings)


def reason(url, **kwargs) -> str:
    with pytest.raises(fetching.FetchError) as raised:
        get(url, **kwargs)
    return raised.value.reason


# One deadline for the whole fetch


class Drip:
    """A server on 127.0.0.1 that sends ``head``, then one byte of ``trickle`` every
    ``interval`` seconds, over and over, for as long as the client listens."""

    def __init__(self, head: bytes, trickle: bytes, interval: float = 0.2):
        self.head, self.trickle, self.interval = head, trickle, interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.drip, args=(connection,), daemon=True).start()

    def drip(self, connection):
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(self.head)
                while not self.stopped.wait(self.interval):
                    for byte in self.trickle:
                        connection.sendall(bytes([byte]))
                        if self.stopped.wait(self.interval):
                            return
            except OSError:
                return  # the client gave up, as it is meant to

    def close(self):
        self.stopped.set()
        self.listener.close()


DRIPS = {
    "the status line": (b"", b"HTTP/1.1 200 OK\r\n"),
    "the headers": (b"HTTP/1.1 200 OK\r\n", b"X-Padding: slowly\r\n"),
    "a body of announced length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",
        b"BEGIN:VCALENDAR\r\n",
    ),
    "a chunked body": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"1\r\nX\r\n",
    ),
}


@pytest.mark.parametrize("where", DRIPS)
def test_a_server_that_sends_a_byte_now_and_then_is_given_up_at_the_deadline(where):
    drip = Drip(*DRIPS[where])
    started = time.monotonic()
    try:
        assert reason(f"http://127.0.0.1:{drip.port}/feed.ics", timeout=1) == (
            "The timetable feed did not answer within 1 seconds."
        )
    finally:
        drip.close()
    assert time.monotonic() - started < 1.5


def test_a_name_that_takes_too_long_to_resolve_is_given_up_at_the_deadline():
    def slow(host, port):
        time.sleep(3)
        return [ipaddress.ip_address("127.0.0.1")]

    started = time.monotonic()
    assert reason("http://feeds.example.edu/feed.ics", timeout=0.5, resolver=slow) == (
        "The timetable feed did not answer within 0.5 seconds."
    )
    assert time.monotonic() - started < 1


def test_a_feed_within_the_deadline_is_read(server):
    answer = get(f"http://127.0.0.1:{server.server_port}/feed.ics", timeout=1)
    assert (answer.status, answer.body) == (200, BODY)


# Addresses the portal does not fetch from


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "127.8.9.10",
        "10.0.0.1",  # private
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # link-local: a cloud's metadata service
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "0.0.0.0",  # unspecified: the machine itself
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",  # link-local
        "fd00::1",  # unique-local
        "fc00::1",
        "fec0::1",  # site-local
        "ff02::1",  # multicast
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
    ],
)
def test_local_and_private_addresses_are_refused(address):
    assert fetching.refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5"])
def test_public_addresses_are_fetched_from(address):
    assert not fetching.refused(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.20.1.2", True),
        ("::ffff:10.20.1.2", True),
        ("10.21.0.1", False),
        ("fd12:3456::7", True),
        ("fd12:3457::7", False),
        ("127.0.0.1", False),
    ],
)
def test_an_allowed_network_is_fetched_from_and_only_that_one(address, allowed):
    networks = (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd12:3456::/48"))
    assert fetching.refused(ipaddress.ip_address(address), networks) is not allowed


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/feed.ics",
        "http://[::ffff:127.0.0.1]:{port}/feed.ics",
        "http://0.0.0.0:{port}/feed.ics",
        "http://10.0.0.1/feed.ics",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/feed.ics",
        "http://[fd00::1]/feed.ics",
        "https://[fd00::1]/feed.ics",
    ],
)
def test_production_refuses_local_and_private_addresses_before_connecting(server, url):
    url = url.format(port=server.server_port)
    assert reason(url, allowed=()) == fetching.NOT_ALLOWED
    assert server.seen == []


@pytest.mark.parametrize(
    "answers", [["fd00::5"], ["10.1.2.3"], ["93.184.215.14", "10.1.2.3"], ["127.0.0.1"]]
)
def test_a_name_is_refused_when_any_address_it_resolves_to_is_refused(answers):
    resolver = Resolver(feeds_example_edu=[answers])
    url = "http://feeds.example.edu/feed.ics"
    assert reason(url, allowed=(), resolver=resolver) == fetching.NOT_ALLOWED


@pytest.mark.parametrize(
    "target",
    [
        "http://intranet.example.edu/feed.ics",  # resolves to 10.1.2.3
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed.ics",
        "http://localhost/feed.ics",  # resolves to 127.0.0.1, outside what is allowed
    ],
)
def test_a_redirect_from_an_allowed_host_to_a_private_one_is_refused(server, target):
    resolver = Resolver(
        feeds_example_edu=[["127.0.0.1"]], intranet_example_edu=[["10.1.2.3"]], localhost=[["::1"]]
    )
    url = f"http://feeds.example.edu:{server.server_port}/redirect?to={target}"
    assert reason(url, allowed=TEST_SERVER, resolver=resolver) == fetching.NOT_ALLOWED
    assert [path for path, _ in server.seen] == [f"/redirect?to={target}"]


def test_redirects_are_followed_to_the_checked_address_with_the_hosts_name(server):
    port = server.server_port
    resolver = Resolver(
        feeds_example_edu=[["127.0.0.1"]], cdn_example_edu=[["127.0.0.1"], ["10.0.0.9"]]
    )
    target = f"http://cdn.example.edu:{port}/feed.ics"
    answer = get(
        f"http://feeds.example.edu:{port}/redirect?to={target}",
        allowed=TEST_SERVER,
        resolver=resolver,
    )
    assert (answer.status, answer.body) == (200, BODY)
    assert server.seen == [
        (f"/redirect?to={target}", f"feeds.example.edu:{port}"),
        ("/feed.ics", f"cdn.example.edu:{port}"),
    ]
    # Each hop's name is looked up once: the connection goes to the address checked, so a
    # second answer (10.0.0.9 here, DNS rebinding) is never asked for.
    assert resolver.lookups == ["feeds.example.edu", "cdn.example.edu"]


def test_redirects_stop_after_five(server):
    assert reason(f"http://127.0.0.1:{server.server_port}/loop") == fetching.TOO_MANY_REDIRECTS
    assert len(server.seen) == fetching.MAX_REDIRECTS + 1


@pytest.mark.parametrize("url", ["ftp://feeds.example.edu/feed.ics", "file:///etc/passwd"])
def test_only_http_and_https_are_fetched(url):
    assert reason(url) == fetching.NOT_HTTP


def test_a_redirect_to_another_scheme_is_refused(server):
    url = f"http://127.0.0.1:{server.server_port}/redirect?to=file:///etc/passwd"
    assert reason(url) == fetching.NOT_HTTP


def test_https_checks_the_certificate_against_the_hosts_name_not_the_address(tls_server, pki):
    port = tls_server.server_port
    resolver = Resolver(localhost=[["127.0.0.1"]], feeds_example_edu=[["127.0.0.1"]])
    answer = get(f"https://localhost:{port}/feed.ics", resolver=resolver, ca_certs=pki.ca_path)
    assert (answer.status, answer.body) == (200, BODY)
    # The certificate names 127.0.0.1 and localhost, not the name asked for.
    url = f"https://feeds.example.edu:{port}/feed.ics"
    assert reason(url, resolver=resolver, ca_certs=pki.ca_path) == fetching.UNTRUSTED


def test_a_name_that_does_not_resolve_is_reported_in_plain_words():
    assert reason("http://feeds.example.edu/", resolver=Resolver()) == fetching.NOT_FOUND


def test_an_unreachable_server_is_reported_in_plain_words_and_logged_in_detail(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert reason(f"http://127.0.0.1:{closed_port}/feed.ics") == fetching.UNREACHABLE
    assert "Connection refused" in caplog.text
