"""Serving the stand-ins over https on 127.0.0.1, each in a daemon thread.

Transport only, no behaviour of Microsoft's to follow beyond HTTP/1.1 itself: connections
kept alive between requests, as Microsoft's endpoints keep them (RFC 9112, persistence).
"""

import contextlib
import io
import socket
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, DechunkedInput, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from .directory import Directory
from .graph import create_graph_app
from .identity import create_identity_app
from .tls import TestPKI


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler, sending each response at once, keeping connections open between
    requests (as Microsoft's endpoints do) and logging only errors.

    Without TCP_NODELAY, Nagle's algorithm holds the response behind the TLS 1.3 session
    tickets, which costs about 10 ms per request. Werkzeug closes every connection after
    one request: http.server would take a request body the application left unread for the
    next request line, and after each response werkzeug reads whatever else the client has
    sent. This handler gives the application the body alone (Content-Length bytes, or the
    chunks), reads the rest of it after the response, and shows werkzeug's read-everything
    an empty stream, so that a client's connection (and its TLS session) serves many
    requests.
    """

    quiet = True

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.request)
            self.server.accepted += 1

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.request)
        super().finish()

    def make_environ(self):
        environ = super().make_environ()
        if "wsgi.input_terminated" in environ:  # chunked
            environ["wsgi.input"] = DechunkedInput(self._connection_input)
        else:
            length = environ.get("CONTENT_LENGTH", "")
            environ["wsgi.input"] = LimitedStream(self._connection_input, int(length or 0))
            environ["wsgi.input_terminated"] = True
        self._body = environ["wsgi.input"]
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close":
            return  # werkzeug's "always close"; run_wsgi reads the rest of the body instead
        super().send_header(keyword, value)

    def run_wsgi(self) -> None:
        self._connection_input, self.rfile = self.rfile, io.BytesIO()
        try:
            super().run_wsgi()
        finally:
            self.rfile = self._connection_input
        try:
            while self._body.read(64 * 1024):
                pass
        except (OSError, ValueError):
            self.close_connection = True

    def log_request(self, *args, **kwargs) -> None:
        if not self.quiet:
            super().log_request(*args, **kwargs)


class _LoggingHandler(_Handler):
    """Also logs one line per request."""

    quiet = False


class StandinServer:
    """A Flask app served over https on 127.0.0.1 (a free port unless one is given).

    ``StandinServer(app, pki).start()`` returns the running server; ``url`` is its base URL,
    ``stop()`` ends it. As a context manager it starts and stops itself.
    """

    def __init__(self, app: Flask, pki: TestPKI, port: int = 0, quiet: bool = True):
        self.app, self.pki, self.port, self.quiet = app, pki, port, quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``https://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return f"https://127.0.0.1:{self._server.server_port}"

    @property
    def accepted(self) -> int:
        """How many connections the server has accepted (each serves many requests)."""
        return self._server.accepted if self._server else 0

    def start(self) -> "StandinServer":
        """Bind the port and serve in a daemon thread."""
        self._server = make_server(
            "127.0.0.1",
            self.port,
            self.app,
            threaded=True,
            request_handler=_Handler if self.quiet else _LoggingHandler,
            ssl_context=self.pki.ssl_context(),
        )
        self._server.connections, self._server.connections_lock = set(), threading.Lock()
        self._server.accepted = 0
        # A short poll interval keeps stop() quick when every test starts its own server.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"standin-{self.app.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:  # kept-alive connections end with the server
            for connection in self._server.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "StandinServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_standins(
    directory: Directory,
    pki: TestPKI,
    identity_port: int = 0,
    graph_port: int = 0,
    quiet: bool = True,
) -> tuple[StandinServer, StandinServer]:
    """Start the identity and Graph stand-ins over ``directory`` and record their URLs in it
    (``base_url_identity``, ``base_url_graph``); the caller stops both servers."""
    identity = StandinServer(create_identity_app(directory), pki, identity_port, quiet).start()
    try:
        graph = StandinServer(create_graph_app(directory), pki, graph_port, quiet).start()
    except BaseException:
        identity.stop()
        raise
    directory.base_url_identity = identity.url
    directory.base_url_graph = graph.url
    return identity, graph
