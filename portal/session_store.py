"""Server-side sessions kept in the portal's own database table, through Flask-Session.

Flask-Session's SQLAlchemy backend declares its table on the first application it is
bound to, so it cannot serve a second application in the same process (the tests make
many). This backend plugs the portal's migrated ``ServerSession`` model into
Flask-Session's own session interface instead; Redis uses Flask-Session's Redis backend.
"""

import logging
from datetime import timedelta

from flask.sessions import SessionInterface
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db
from .models import ServerSession, utcnow

log = logging.getLogger(__name__)

# Every request reads its session: one statement, built once, by the unique session_id
# index, and only the two columns it needs (no ORM object to track).
_READ = select(ServerSession.data, ServerSession.expiry).where(
    ServerSession.session_id == bindparam("store_id")
)


class DatabaseSessionInterface(ServerSideSessionInterface):
    """Flask-Session interface storing sessions in the ``server_session`` table."""

    ttl = False

    def __init__(self, app):
        super().__init__(app, key_prefix="session:", cleanup_n_requests=1000)

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        # straight on the session's connection: a Core statement needs no ORM bookkeeping
        row = db.session.connection().execute(_READ, {"store_id": store_id}).first()
        if row is None or row.expiry <= utcnow():
            return None
        return self.serializer.decode(row.data)

    def _delete_session(self, store_id: str) -> None:
        db.session.execute(delete(ServerSession).filter_by(session_id=store_id))
        db.session.commit()

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        data = self.serializer.encode(session)
        expiry = utcnow() + session_lifetime
        row = db.session.scalar(select(ServerSession).filter_by(session_id=store_id))
        if row is None:
            db.session.add(ServerSession(session_id=store_id, data=data, expiry=expiry))
        else:
            row.data, row.expiry = data, expiry
        db.session.commit()

    def _delete_expired_sessions(self) -> None:
        """Flask-Session's housekeeping, before about one request in 1,000 (any request,
        ``/healthz`` too): a database that fails it fails that request's own work, not
        this; the next cleanup tries again."""
        try:
            db.session.execute(delete(ServerSession).where(ServerSession.expiry <= utcnow()))
            db.session.commit()
        except SQLAlchemyError as error:
            db.session.rollback()
            log.warning("Expired sessions not deleted (%s).", type(error).__name__)


class SessionlessPaths(SessionInterface):
    """``inner``'s sessions everywhere but at ``paths`` and under ``prefixes``, which get
    Flask's null session.

    A health check polled every few seconds by a load balancer must not make a session
    (a cookie, a row or Redis key each time), nor fail because reading one failed: it is
    the check that says the store is down. Everything else is ``inner``'s, such as the
    ``regenerate`` of Flask-Session's interfaces.
    """

    def __init__(
        self, inner: SessionInterface, paths: frozenset[str], prefixes: tuple[str, ...] = ()
    ):
        self.inner = inner
        self.paths = paths
        self.prefixes = prefixes

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def open_session(self, app, request):
        if request.path in self.paths or request.path.startswith(self.prefixes):
            return self.make_null_session(app)
        return self.inner.open_session(app, request)

    def save_session(self, app, session, response) -> None:
        self.inner.save_session(app, session, response)
