"""Serving the stand-ins over https on 127.0.0.1, each in a daemon thread."""

import socket
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .directory import Directory
from .graph import create_graph_app
from .identity import create_identity_app
from .tls import TestPKI


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler, sending each response at once and logging only errors.

    Without TCP_NODELAY, Nagle's algorithm holds the response behind the TLS 1.3 session
    tickets until werkzeug closes the connection, which costs about 10 ms per request.
    """

    quiet = True

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

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
