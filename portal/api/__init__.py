"""The provisioning API: JSON under ``/api/v1/`` for MyTimetable, with an API key per
institution; its OpenAPI document is made from the code by flask-smorest."""

from flask_smorest import Blueprint

bp = Blueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="Mailboxes of an approved application-permissions configuration.",
)

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
