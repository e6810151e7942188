"""Support staff accounts: scrypt password hashes, sign-in checks."""

import secrets

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import StaffUser, record, utcnow

# Compared against when the e-mail address is unknown, so that a wrong address takes as
# long as a wrong password and the answer does not tell which accounts exist.
_UNKNOWN = generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


class StaffError(ValueError):
    """A staff account cannot be made as asked."""


def create_staff(email: str, password: str | None = None) -> tuple[StaffUser, str | None]:
    """Add a staff member; with no password, make one and return it (shown once)."""
    email = email.strip().lower()
    if "@" not in email:
        raise StaffError("Give the staff member's e-mail address.")
    if find(email) is not None:
        raise StaffError(f"{email} already has an account.")
    generated = None
    if password is None:
        password = generated = secrets.token_urlsafe(18)
    if len(password) < 12:
        raise StaffError("Use a password of at least 12 characters.")
    staff = StaffUser(email=email, password_hash=generate_password_hash(password, method="scrypt"))
    db.session.add(staff)
    record(None, "support (command line)", "staff_created", email)
    return staff, generated


def find(email: str) -> StaffUser | None:
    """The staff member with this address (any case)."""
    return db.session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.lower()))


def authenticate(email: str, password: str) -> StaffUser | None:
    """The active staff member these credentials belong to; failures are audited."""
    staff = find(email.strip())
    valid = check_password_hash(staff.password_hash if staff else _UNKNOWN, password)
    if staff is None or not valid or not staff.active:
        record(None, email.strip()[:320] or "(empty)", "sign_in_failed", "wrong e-mail or password")
        db.session.commit()
        return None
    staff.last_sign_in_at = utcnow()
    record(None, staff.email, "signed_in")
    db.session.commit()
    return staff


def reset_demo_password(email: str) -> str:
    """Demo data only: (re)make the demo staff account with a fresh password."""
    password = secrets.token_urlsafe(12)
    member = find(email)
    if member is None:
        member, _ = create_staff(email, password)
    member.password_hash = generate_password_hash(password, method="scrypt")
    return password
