"""Absolute addresses of the portal's own pages, on its external URL."""

from flask import current_app, url_for


def external(endpoint: str, **values) -> str:
    """The address a browser elsewhere (or Microsoft) uses for ``endpoint``."""
    return current_app.config["EXTERNAL_URL"] + url_for(endpoint, **values)


def redirect_uri() -> str:
    """The one redirect URI registered in Entra: administrators and end users share it."""
    return external("connect.callback")
