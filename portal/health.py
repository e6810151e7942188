"""Reachability of the services the portal needs, for load balancers and monitoring."""

import redis
from flask import current_app
from sqlalchemy import false, update

from .extensions import db
from .models import ServerSession

OK = "ok"
# Every request writes (its session, the sync's bookkeeping): a database that still answers
# reads but refuses writes (a read-only replica after a fail-over, a read-only file system)
# is down for the portal. An UPDATE that matches no row takes the write lock and is refused
# where writes are, without changing anything or using up an ID.
_WRITE_PROBE = update(ServerSession).where(false()).values(expiry=ServerSession.expiry)


def check() -> dict[str, str]:
    """``{"database": "ok" | error, "redis": "ok" | error}``, Redis only when configured;
    an error is named by its exception class, which says what failed and holds no secret."""
    report = {}
    try:
        db.session.execute(_WRITE_PROBE)
        report["database"] = OK
    except Exception as error:  # any failure means unhealthy; say which
        report["database"] = type(error).__name__
    finally:
        db.session.rollback()
    url = current_app.config.get("REDIS_URL")
    if url:
        try:
            redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
            report["redis"] = OK
        except redis.RedisError as error:
            report["redis"] = type(error).__name__
    return report


def summary(report: dict[str, str]) -> tuple[dict, int]:
    """The answer to ``/healthz``: the report with ``status`` and, when something is down,
    ``down`` naming it; 200 when everything is up, else 503."""
    down = [name for name, state in report.items() if state != OK]
    if not down:
        return {"status": OK, **report}, 200
    return {"status": "down", "down": down, **report}, 503
