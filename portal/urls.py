"""Addresses: the portal's own pages on its external URL, and which addresses taken from
a request the portal may send a browser to."""

import re
from urllib.parse import unquote, urlsplit

from flask import current_app, url_for
from werkzeug.routing import IntegerConverter

# Browsers drop tabs and newlines anywhere in an address and read a backslash as a
# slash, so "/\t/evil.example" and "/\\evil.example" both lead to another host.
_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\x7f\\]")
MAX_TARGET_LENGTH = 2000
# Row IDs are INTEGER columns: 32-bit signed in PostgreSQL (64-bit in SQLite, which never
# reaches past the smaller range either), so no row has a larger ID.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in the portal's routes: a row ID, so only a number the database can hold.

    A larger number cannot name a row; passed on, SQLite's driver raises OverflowError and
    PostgreSQL's a DataError, a 500. Out of range, the URL matches no route: a 404.
    """

    def __init__(self, map, **kwargs):
        super().__init__(map, **({"max": MAX_ROW_ID} | kwargs))


def external(endpoint: str, **values) -> str:
    """The address a browser elsewhere (or Microsoft) uses for ``endpoint``."""
    return current_app.config["EXTERNAL_URL"] + url_for(endpoint, **values)


def redirect_uri() -> str:
    """The one redirect URI registered in Entra: administrators and end users share it."""
    return external("connect.callback")


def local_target(target: str | None) -> str | None:
    """``target`` if it is a path on this portal, else None.

    For every redirect to an address that came with the request (a ``next`` parameter, a
    form field, a Referer): only a path that starts with one slash passes, without a
    scheme or host, without characters a browser drops or turns into a slash, also once
    percent-decoded (a proxy in front may decode it).
    """
    if not isinstance(target, str) or not 0 < len(target) <= MAX_TARGET_LENGTH:
        return None
    if " " in target:
        return None
    for form in (target, unquote(target)):
        if not form.startswith("/") or form.startswith("//"):
            return None
        if _UNSAFE_CHARACTER.search(form):
            return None
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return None
    return target
