"""The end user's area, and the redirect URI Microsoft sends every sign-in back to."""

from flask import Blueprint

bp = Blueprint("connect", __name__, url_prefix="/connect")

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
