"""The portal's log: one handler for every logger, JSON lines in production and readable
lines in development, each line carrying the request's ID; and the keys kept out of it.

``init_app`` (the factory's ``register_logging``) sets it up. What a sign-in, a
verification and a synchronisation did is logged at INFO where each finishes (``staff``,
``connections``, ``verification``, ``sync.engine``); what went wrong, at WARNING (and a
Microsoft sign-in that did not complete, in ``signins``).

Keys kept out: an invitation link's token, and the codes, states and tokens of Microsoft's
answers (and the login hints, which name people) in query strings. One filter, ``KEYS``,
rewrites each line that reaches the portal's handler (the portal's own, the libraries',
werkzeug's development server with its request lines) and gunicorn's access and error
logs (``gunicorn.conf.py``). Tokens, keys, passwords, TOTP secrets and codes and e-mail
bodies are never handed to a logger in the first place.
"""

import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

# The token is the last segment of an invitation link's path.
_INVITATION = re.compile(r"(/setup/i/)[^/?#\s\"']+")
_PARAMETERS = re.compile(
    r"\b(code|state|session_state|client_info|id_token|access_token|refresh_token|login_hint)"
    r"=[^&#\s\"']*"
)
REQUEST_ID_HEADER = "X-Request-ID"
# What a reverse proxy or load balancer sends (nginx's $request_id, a UUID, ...): anything
# else (too long, spaces, markup) is not trusted into the log and a new ID is made.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id")


def redact(text: str) -> str:
    """``text`` with invitation tokens and key-bearing query parameters replaced."""
    return _PARAMETERS.sub(r"\1=[redacted]", _INVITATION.sub(r"\1[redacted]", text))


class KeyFilter(logging.Filter):
    """Rewrites a record's message without the keys in it (the record is formatted here,
    once, so that handlers and formatters downstream see only the redacted text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


KEYS = KeyFilter()


def request_id() -> str:
    """The current request's ID: the proxy's ``X-Request-ID`` when well-formed, else a new
    one, the same for the whole request (its log lines, its answer's header, its error page)."""
    if "request_id" not in g:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _WELL_FORMED_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the request's, or ``-`` outside a request (the
    command line, a queue worker)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id() if has_request_context() else "-"
        return True


def formatter(log_format: str) -> logging.Formatter:
    """JSON lines (``json``: one object a line, for a log collector) or readable lines
    (``text``)."""
    if log_format == "json":
        return JsonFormatter(
            list(JSON_FIELDS),
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter(TEXT_FORMAT)


class PortalHandler(logging.StreamHandler):
    """The portal's handler on the root logger, to standard error (for the service
    manager or the container to collect); its own class so that a second ``create_app`` in
    the same process (tests, the CLI) replaces it instead of adding another."""


def init_app(app: Flask) -> None:
    """Send every logger's records (the portal's, the libraries') through one handler at
    ``PORTAL_LOG_LEVEL``, formatted as ``PORTAL_LOG_FORMAT`` says; put the request ID on the
    answer, and keep keys out of the log."""
    handler = PortalHandler(sys.stderr)
    handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(KEYS)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, PortalHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    # A logger's own filters see records logged on it before any handler does (pytest's
    # caplog, a handler added later): werkzeug's request lines hold query strings.
    for logger in (app.logger, logging.getLogger("werkzeug")):
        logger.addFilter(KEYS)
    app.jinja_env.globals["request_id"] = request_id

    @app.after_request
    def request_id_header(response):
        response.headers[REQUEST_ID_HEADER] = request_id()
        return response
