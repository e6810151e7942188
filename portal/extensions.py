"""The one place extension objects are made; ``create_app`` binds them to an application."""

import sqlite3

from flask_babel import Babel
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
sessions = Session()
limiter = Limiter(get_remote_address, default_limits=[])
# The areas whose routes carry limits (``@limiter.limit``): only the support console's
# sign-in. The limiter looks up a request's limits only there (``limit_only_where_limited``),
# not on every page, where it cost a tenth of a millisecond; a limit added in another area
# needs its name here.
LIMITED_AREAS = frozenset({"support"})


def limit_only_where_limited(app) -> None:
    """Move the limiter's check of each request from the whole application to the
    blueprints of ``LIMITED_AREAS``. Flask-Limiter offers no setting for this: its
    ``init_app`` adds the check for every request, and it is moved here, failing loudly
    (``ValueError``) should a version of Flask-Limiter no longer add it that way."""
    check = limiter._check_request_limit
    app.before_request_funcs[None].remove(check)
    for area in LIMITED_AREAS:
        app.before_request_funcs.setdefault(area, []).append(check)


babel = Babel()
# Rendered page fragments, per process: see ``portal.fragments``.
fragments = Cache()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite: write-ahead logging so readers never wait for a writer, and a busy timeout
    so concurrent writers queue instead of failing."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
