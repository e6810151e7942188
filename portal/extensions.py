"""The one place extension objects are made; ``create_app`` binds them to an application."""

import sqlite3
from functools import partial

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
    """Move the limiter's hooks (its check before a request, its headers after, its clean-up)
    from the whole application to the blueprints of ``LIMITED_AREAS``.

    Flask-Limiter offers no setting for this: its ``init_app`` adds them for every request.
    A hook is the limiter's when it is bound to it (or a ``partial`` of it); should a version
    of Flask-Limiter add none that way, this fails loudly instead of limiting nothing.
    """

    def owned(hook) -> bool:
        bound = hook.args[0] if isinstance(hook, partial) and hook.args else hook
        return getattr(bound, "__self__", bound) is limiter

    moved = 0
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        everywhere = hooks.get(None, [])
        mine = [hook for hook in everywhere if owned(hook)]
        hooks[None] = [hook for hook in everywhere if not owned(hook)]
        for area in LIMITED_AREAS:
            hooks.setdefault(area, []).extend(mine)
        moved += len(mine)
    if moved != 3:
        raise RuntimeError(f"Flask-Limiter added {moved} hooks, not the 3 expected")


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
