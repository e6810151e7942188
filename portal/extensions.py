"""The one place extension objects are made; ``create_app`` binds them to an application."""

import sqlite3

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_session import Session
from flask_smorest import Api
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
babel = Babel()


class ProvisioningApi(Api):
    """flask-smorest's ``Api`` for the provisioning API. Its errors are RFC 9457 problem
    details (``portal.api.problems``), documented on each operation, so flask-smorest's
    own error answer is neither added to every operation nor used."""

    DEFAULT_ERROR_RESPONSE_NAME = None


provisioning_api = ProvisioningApi()


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
