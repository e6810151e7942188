"""Settings read from the environment (``PORTAL_*``), with embedded defaults for one machine.

Every setting is documented in ``.env.example``. In production (the default), a missing
secret stops start-up with a clear message; in development the portal makes the secrets
once and keeps them in its instance folder, so a laptop run needs no set-up.
"""

import ipaddress
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _instance_secret(instance_path: str, name: str, make) -> str:
    """Read a development secret from the instance folder, making it on first use."""
    path = Path(instance_path) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def _whole_number(env, name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise ConfigurationError(f"{name} must be a whole number of 0 or more, not {value!r}.")
    return int(value)


def _seconds(env, name: str, default: float) -> float:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds < float("inf"):
        raise ConfigurationError(f"{name} must be a number of seconds above 0, not {value!r}.")
    return seconds


@dataclass(frozen=True)
class RemovalLimit:
    """``PORTAL_GROUP_FOLLOW_MAX_REMOVALS``: how many synchronisations one pass of group
    following may end before it holds them for a person to confirm. A percentage of the
    group (never fewer than ``FLOOR``, so that a small group's ordinary comings and goings
    are not held) or a whole number."""

    percent: float | None = 10.0
    count: int | None = None

    FLOOR = 20

    def of(self, group_size: int) -> int:
        """The most removals one pass may make, for a group of ``group_size`` mailboxes."""
        if self.count is not None:
            return self.count
        return max(self.FLOOR, math.floor(group_size * self.percent / 100))


def removal_limit(env) -> RemovalLimit:
    """``PORTAL_GROUP_FOLLOW_MAX_REMOVALS``: ``10%`` (the default), or a whole number."""
    name = "PORTAL_GROUP_FOLLOW_MAX_REMOVALS"
    value = (env.get(name) or "").strip()
    if not value:
        return RemovalLimit()
    if value.isdigit():
        return RemovalLimit(percent=None, count=int(value))
    number = value.removesuffix("%").strip()
    try:
        percent = float(number) if value.endswith("%") else -1.0
    except ValueError:
        percent = -1.0
    if not 0 <= percent <= 100:
        raise ConfigurationError(
            f"{name} must be a percentage of the group such as 10% or a whole number of "
            f"mailboxes such as 50, not {value!r}."
        )
    return RemovalLimit(percent=percent)


# A bearer token for /metrics shorter than this could be guessed by trying.
METRICS_TOKEN_MIN_LENGTH = 32


def metrics_token(env) -> str | None:
    """``PORTAL_METRICS_TOKEN``, refused when short enough to guess; None when unset."""
    value = (env.get("PORTAL_METRICS_TOKEN") or "").strip()
    if not value:
        return None
    if len(value) < METRICS_TOKEN_MIN_LENGTH:
        raise ConfigurationError(
            f"PORTAL_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters. "
            'Make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return value


def check_metrics_directory(env) -> None:
    """``PROMETHEUS_MULTIPROC_DIR``, when set, must be a directory this process can write
    in: prometheus_client otherwise fails on the first count, far from the cause."""
    directory = env.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)):
        raise ConfigurationError(
            f"PROMETHEUS_MULTIPROC_DIR ({directory}) is not a directory the portal can write "
            "in. Make it (empty) before the portal's processes start, or unset it."
        )


# Loopback only: in development the feed often runs on the same machine (./dev run).
DEVELOPMENT_FEED_NETWORKS = "127.0.0.0/8, ::1/128"


def feed_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of ``PORTAL_FEED_ALLOWED_NETWORKS``: CIDRs separated by commas.

    Raises ConfigurationError naming the first entry that is not a network, such as an
    address with host bits set where a network was meant (``10.1.2.3/16``).
    """
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as error:
            raise ConfigurationError(
                f"PORTAL_FEED_ALLOWED_NETWORKS: {entry!r} is not a network in CIDR notation "
                f"such as 10.20.0.0/16 or fd12:3456::/48 ({error})."
            ) from None
    return tuple(networks)


# What a page can show as a link: an https address, or a plain e-mail address.
_SUPPORT_URL = re.compile(r"https://[\w.-]+(?::\d+)?(?:/[\w.~%/?#&=+@:-]*)?")
_SUPPORT_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def support_contact(value: str | None) -> dict:
    """``PORTAL_SUPPORT_CONTACT``: an e-mail address, an https URL, or both separated by a
    comma; returns ``{"email": ..., "url": ...}`` with what was given (empty when unset)."""
    contact = {}
    for entry in (part.strip() for part in (value or "").split(",")):
        if not entry:
            continue
        if _SUPPORT_URL.fullmatch(entry):
            key = "url"
        elif _SUPPORT_EMAIL.fullmatch(entry):
            key = "email"
        else:
            raise ConfigurationError(
                f"PORTAL_SUPPORT_CONTACT: {entry!r} is neither an e-mail address nor an "
                "https:// address. Give one of each at most, separated by a comma."
            )
        if key in contact:
            raise ConfigurationError(f"PORTAL_SUPPORT_CONTACT gives more than one {key}.")
        contact[key] = entry
    return contact


_PEM_KEY = re.compile(
    r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?PRIVATE KEY-----", re.S
)
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def sign_in_app(env) -> dict:
    """The vendor's multi-tenant app registration for administrators' Microsoft sign-in:
    ``PORTAL_SIGNIN_CLIENT_ID`` with either ``PORTAL_SIGNIN_CLIENT_SECRET`` or
    ``PORTAL_SIGNIN_CERTIFICATE`` (a PEM file holding its private key and certificate).
    Unset, the sign-in is off."""
    client_id = (env.get("PORTAL_SIGNIN_CLIENT_ID") or "").strip()
    secret = env.get("PORTAL_SIGNIN_CLIENT_SECRET") or None
    certificate = env.get("PORTAL_SIGNIN_CERTIFICATE") or None
    if not client_id:
        if secret or certificate:
            raise ConfigurationError(
                "PORTAL_SIGNIN_CLIENT_SECRET or PORTAL_SIGNIN_CERTIFICATE is set without "
                "PORTAL_SIGNIN_CLIENT_ID."
            )
        return {"SIGNIN_CLIENT_ID": None, "SIGNIN_CREDENTIAL": None}
    if bool(secret) == bool(certificate):
        raise ConfigurationError(
            "PORTAL_SIGNIN_CLIENT_ID needs exactly one of PORTAL_SIGNIN_CLIENT_SECRET and "
            "PORTAL_SIGNIN_CERTIFICATE."
        )
    if certificate:
        try:
            pem = Path(certificate).read_text()
        except OSError as error:
            raise ConfigurationError(
                f"PORTAL_SIGNIN_CERTIFICATE ({certificate}) cannot be read: {error.strerror}."
            ) from None
        key = _PEM_KEY.search(pem)
        certificate_block = _PEM_CERTIFICATE.search(pem)
        if key is None or certificate_block is None:
            raise ConfigurationError(
                "PORTAL_SIGNIN_CERTIFICATE must be a PEM file holding both the private key "
                "and the certificate uploaded to the sign-in app registration."
            )
        credential = {
            "private_key": key.group(0),
            "public_certificate": certificate_block.group(0),
        }
    else:
        credential = secret
    return {"SIGNIN_CLIENT_ID": client_id.lower(), "SIGNIN_CREDENTIAL": credential}


def database_uri(url: str | None) -> str | None:
    """The SQLAlchemy URL for ``url``: PostgreSQL URLs as hosting providers write them
    (``postgres://`` or ``postgresql://``) are served by psycopg 3, the driver installed."""
    if not url:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def logging_format(env, development: bool) -> str:
    """``PORTAL_LOG_FORMAT``: ``json`` (one object a line, the default in production) or
    ``text`` (readable lines, the default in development). gunicorn's lines follow it too."""
    value = env.get("PORTAL_LOG_FORMAT") or ("text" if development else "json")
    if value not in ("json", "text"):
        raise ConfigurationError("PORTAL_LOG_FORMAT must be 'json' or 'text'.")
    return value


def from_environment(instance_path: str, given: dict | None = None, environ=None) -> dict:
    """Return the Flask configuration for the ``PORTAL_*`` variables in ``environ``.

    Settings in ``given`` (the factory's explicit configuration) win; a secret given
    there is not looked for in the environment.
    """
    env = os.environ if environ is None else environ
    given = given or {}
    mode = given.get("PORTAL_ENV") or env.get("PORTAL_ENV", "production")
    if mode not in ("production", "development"):
        raise ConfigurationError("PORTAL_ENV must be 'production' or 'development'.")
    development = mode == "development"

    def secret(name: str, key: str, make) -> str:
        value = given.get(key) or env.get(name)
        if value:
            return value
        if development:
            return _instance_secret(instance_path, name.lower(), make)
        raise ConfigurationError(
            f"{name} is not set. Production needs it; see .env.example for how to make one."
        )

    database_url = database_uri(env.get("PORTAL_DATABASE_URL")) or (
        "sqlite:///" + str(Path(instance_path) / "portal.db")
    )
    log_level = env.get("PORTAL_LOG_LEVEL", "info").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigurationError(
            f"PORTAL_LOG_LEVEL must be one of {', '.join(LOG_LEVELS).lower()}."
        )
    log_format = logging_format(env, development)
    check_metrics_directory(env)
    config = {
        "PORTAL_ENV": mode,
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": log_format,
        "SECRET_KEY": secret("PORTAL_SECRET_KEY", "SECRET_KEY", lambda: secrets.token_urlsafe(48)),
        "ENCRYPTION_KEYS": secret(
            "PORTAL_ENCRYPTION_KEY", "ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()
        ),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": env.get("PORTAL_REDIS_URL") or None,
        "EXTERNAL_URL": env.get("PORTAL_EXTERNAL_URL", "http://127.0.0.1:5000").rstrip("/"),
        "AUTHORITY_HOST": env.get("PORTAL_AUTHORITY_HOST") or None,
        "GRAPH_ENDPOINT": env.get("PORTAL_GRAPH_ENDPOINT") or None,
        "CA_BUNDLE": env.get("PORTAL_CA_BUNDLE") or None,
        "HTTP_TIMEOUT": float(env.get("PORTAL_HTTP_TIMEOUT", "10")),
        "INVITATION_DAYS": int(env.get("PORTAL_INVITATION_DAYS", "30")),
        "PROXY_HOPS": int(env.get("PORTAL_PROXY_HOPS", "0")),
        "SMTP_URL": env.get("PORTAL_SMTP_URL") or None,
        "MAIL_FROM": env.get("PORTAL_MAIL_FROM", "MyTimetable <no-reply@mytimetable.invalid>"),
        "SIGNIN_LIMIT": env.get("PORTAL_SIGNIN_LIMIT", "10 per 15 minutes"),
        "SIGNIN_ADDRESS_LIMIT": env.get("PORTAL_SIGNIN_ADDRESS_LIMIT", "50 per 15 minutes"),
        "API_RATE_LIMIT": env.get("PORTAL_API_RATE_LIMIT", "120 per minute"),
        "SUPPORT_CONTACT": support_contact(env.get("PORTAL_SUPPORT_CONTACT")),
        "FRESH_LINK_LIMIT": env.get("PORTAL_FRESH_LINK_LIMIT", "3 per hour"),
        **sign_in_app(env),
        "STAFF_IDLE_MINUTES": _whole_number(env, "PORTAL_STAFF_IDLE_MINUTES", 30),
        "SYNC_DAYS_BACK": _whole_number(env, "PORTAL_SYNC_DAYS_BACK", 14),
        "SYNC_WEEKS_AHEAD": _whole_number(env, "PORTAL_SYNC_WEEKS_AHEAD", 26),
        "SYNC_LOCK_SECONDS": _whole_number(env, "PORTAL_SYNC_LOCK_SECONDS", 900) or 900,
        "SYNC_CONCURRENCY": _whole_number(env, "PORTAL_SYNC_CONCURRENCY", 16) or 16,
        "FEED_TIMEOUT": _seconds(env, "PORTAL_FEED_TIMEOUT", 10),
        "GROUP_FOLLOW_MINUTES": _whole_number(env, "PORTAL_GROUP_FOLLOW_MINUTES", 60),
        "GROUP_FOLLOW_MAX_REMOVALS": removal_limit(env),
        "METRICS_TOKEN": metrics_token(env),
        "FEED_ALLOWED_NETWORKS": feed_networks(
            env.get("PORTAL_FEED_ALLOWED_NETWORKS")
            or (DEVELOPMENT_FEED_NETWORKS if development else "")
        ),
    }
    config.update(given)
    return config


def defaults(config: dict) -> dict:
    """Settings that follow from the others and are the same in every environment."""
    https = config["EXTERNAL_URL"].startswith("https://")
    # A database server may drop an idle connection, so it is tested before each request;
    # an SQLite file cannot, and the test would cost a query on every request.
    remote = not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    # Each mailbox a sync runner has in flight may hold a database connection for a moment
    # (a thread, an application context and a session each), beside the runner's own.
    connections = max(5, config.get("SYNC_CONCURRENCY", 16) + 2)
    return {
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": remote, "pool_size": connections},
        # Over https the __Host- prefix makes browsers refuse the cookie unless it is Secure,
        # set by this host itself and for every path: a neighbouring subdomain or a page
        # served over plain http cannot plant a session ID for the portal.
        "SESSION_COOKIE_NAME": "__Host-portal_session" if https else "portal_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "SESSION_PERMANENT": True,
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        # Written only when changed: a page view is a read, not a database write.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "RATELIMIT_STORAGE_URI": config.get("REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # The provisioning API's OpenAPI document (flask-smorest), served beside the API.
        "API_TITLE": "MyTimetable Office 365 portal: provisioning API",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
