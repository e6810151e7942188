"""The keys MyTimetable calls the provisioning API with: made and revoked in the support
console, one institution each, shown once and kept only as a hash."""

import secrets

from sqlalchemy import select

from .extensions import db
from .models import ApiKey, Institution, record, utcnow
from .security import token_hash

# A key says what it is, so that a secret scanner or a person who finds one in a file can
# tell (GitHub's and others' token formats do the same).
KEY_PREFIX = "mtp_"
SHOWN_PREFIX = len(KEY_PREFIX) + 6


def create(institution: Institution, name: str, actor: str) -> tuple[ApiKey, str]:
    """Make a key for ``institution``; returns the row and the key, which is never shown
    or readable again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        institution=institution,
        name=name.strip(),
        prefix=key[:SHOWN_PREFIX],
        key_hash=token_hash(key),
        created_by=actor,
    )
    db.session.add(row)
    record(institution, actor, "api_key_created", f"{row.name} ({row.prefix}…)")
    return row, key


def revoke(row: ApiKey, actor: str) -> bool:
    """Stop the key from working; False when it had been revoked already."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    record(row.institution, actor, "api_key_revoked", f"{row.name} ({row.prefix}…)")
    return True


def find(key: str) -> ApiKey | None:
    """The key's row if the key is one the portal made and it is not revoked."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = db.session.scalar(select(ApiKey).filter_by(key_hash=token_hash(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def used(row: ApiKey) -> None:
    """Note that the key was used now (shown in the console)."""
    row.last_used_at = utcnow()


def of(institution: Institution) -> list[ApiKey]:
    """The institution's keys, newest first, revoked ones included."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .filter_by(institution_id=institution.id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )
