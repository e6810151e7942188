"""Graph's error type and the OData query options the Graph stand-in understands.

``$top`` with ``@odata.nextLink`` paging (``$skip`` for Outlook, ``$skiptoken`` for the
directory, as Graph does), ``$select``, and OData string literals. A query the stand-in does
not implement is answered 501 ``NotImplemented`` rather than guessed at, so that a test
which needs it fails loudly instead of passing against behaviour Graph does not have.

Microsoft Graph's documents (microsoft-graph-docs, concepts/): errors.md (the error body
and status codes), paging.md (``@odata.nextLink``), query-parameters.md (``$top``,
``$select``, ``$filter``, string literals).
"""

import base64
import datetime
import re
from urllib.parse import quote, urlencode

from flask import g, request

STRING_LITERAL = r"'((?:[^']|'')*)'"


class GraphError(Exception):
    """A Graph error response; ``headers`` are added to it (``Retry-After``)."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def clone(value):
    """A deep copy of JSON-like data (dicts, lists and scalars), as the stand-ins store
    resources; several times quicker than ``copy.deepcopy``, which the hot paths of a
    benchmark would otherwise spend much of their time in."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value


def error_body(code: str, message: str) -> dict:
    """Graph's error body, ``{"error": {"code", "message", "innerError"}}`` (errors.md: an
    OData error; innerError with the date and request-id, and the client-request-id that
    Graph echoes)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": g.get("request_id", ""),
                "client-request-id": client_request_id(),
            },
        }
    }


def client_request_id() -> str:
    """The caller's ``client-request-id``, or the request's own id as Graph echoes it."""
    return request.headers.get("client-request-id") or g.get("request_id", "")


def only(*options: str) -> None:
    """Answer 501 to a request with a ``$`` query option other than these (errors.md:
    501 Not Implemented, "The requested feature isn't implemented"; here it marks what
    the stand-in leaves out, not a limit of Graph)."""
    for name in request.args:
        if name.startswith("$") and name.lower() not in options:
            raise not_implemented(f"{name} here")


def not_implemented(what: str) -> GraphError:
    """The answer to a query Graph supports and the stand-in does not."""
    return GraphError(501, "NotImplemented", f"The Graph stand-in does not implement {what}.")


def literal(text: str) -> str:
    """The value of the body of an OData string literal (``''`` stands for ``'``:
    query-parameters.md, "Escaping single quotes")."""
    return text.replace("''", "'")


def top(default: int, maximum: int, code: str = "BadRequest") -> int:
    """The page size asked for with ``$top``, or ``default`` (query-parameters.md, top;
    paging.md: each API has its own default and maximum page size)."""
    raw = request.args.get("$top")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        message = (
            f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive."
        )
        raise GraphError(400, code, message)
    return int(raw)


def select() -> list[str] | None:
    """The property names listed in ``$select``, or None without one
    (query-parameters.md, select)."""
    raw = request.args.get("$select")
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def pick(resource: dict, names: list[str] | None, always: tuple[str, ...] = ()) -> dict:
    """The resource cut down to the ``$select``ed properties (names are case-insensitive)
    and the ``always`` ones; the whole resource without a ``$select``."""
    if names is None:
        return resource
    wanted = {name.lower() for name in names} | {name.lower() for name in always}
    return {key: value for key, value in resource.items() if key.lower() in wanted}


def offset(name: str) -> int:
    """Where the page starts: ``$skip`` is a plain number, ``$skiptoken`` an opaque token."""
    raw = request.args.get(name)
    if raw is None:
        return 0
    if name == "$skip":
        if not raw.isdigit():
            raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $skip.")
        return int(raw)
    try:
        return int(base64.urlsafe_b64decode(raw.encode() + b"==").decode().removeprefix("skip:"))
    except ValueError:
        raise GraphError(400, "Request_UnsupportedQuery", "Invalid skip token.") from None


def page(items: list, size: int, name: str) -> tuple[list, str | None]:
    """One page of ``items`` and the ``@odata.nextLink`` to the next one, if any: a whole
    URL that keeps the request's other query parameters and carries ``$skip`` or
    ``$skiptoken``, and none on the last page (paging.md)."""
    start = offset(name)
    end = start + size
    if end >= len(items):
        return items[start:], None
    token = str(end) if name == "$skip" else skiptoken(end)
    query = [(key, value) for key, value in request.args.items(multi=True) if key != name]
    query.append((name, token))
    link = f"{request.host_url.rstrip('/')}{request.path}?"
    return items[start:end], link + urlencode(query, quote_via=quote, safe="$'(),:/")


def skiptoken(position: int) -> str:
    """An opaque ``$skiptoken`` for a position in a directory collection."""
    return base64.urlsafe_b64encode(f"skip:{position}".encode()).decode().rstrip("=")


def equals_filter(prop: str) -> str | None:
    """The value of ``$filter=<prop> eq '<value>'``; None without a ``$filter``
    (query-parameters.md, filter; property names are case-insensitive). Any other
    ``$filter`` is answered 501."""
    raw = request.args.get("$filter")
    if raw is None:
        return None
    match = re.fullmatch(rf"\s*{prop}\s+eq\s+{STRING_LITERAL}\s*", raw, re.IGNORECASE)
    if match is None:
        raise not_implemented(f"$filter={raw} here (only {prop} eq '...')")
    return literal(match[1])
