"""The support console: staff sign-in, the review queue, institutions and invitations."""

from flask import Blueprint

bp = Blueprint("support", __name__, url_prefix="/support")

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
