"""Reachability of the services the portal needs, for load balancers and monitoring."""

import redis
from flask import current_app
from sqlalchemy import text

from .extensions import db


def check() -> dict[str, str]:
    """``{"database": "ok" | error, "redis": "ok" | error | "not configured"}``."""
    report = {}
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as error:  # any failure means unhealthy; say which
        report["database"] = type(error).__name__
    finally:
        db.session.rollback()
    url = current_app.config.get("REDIS_URL")
    if url:
        try:
            redis.Redis.from_url(url, socket_timeout=2).ping()
            report["redis"] = "ok"
        except redis.RedisError as error:
            report["redis"] = type(error).__name__
    return report
