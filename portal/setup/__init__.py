"""The administrator's setup wizard, opened by an institution's invitation link."""

from flask import Blueprint

bp = Blueprint("setup", __name__, url_prefix="/setup")

from . import return_routes, routes  # noqa: E402,F401  (routes attach themselves to bp)
