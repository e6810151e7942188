"""Support staff accounts: passwords zxcvbn finds strong, kept as scrypt hashes; a second
factor for everyone (a TOTP authenticator app, RFC 6238, and one-time recovery codes)."""

import hmac
import logging
import secrets
import time

import pyotp
import segno
from sqlalchemy import func, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from . import security
from .extensions import db
from .models import RecoveryCode, StaffUser, record, utcnow

log = logging.getLogger(__name__)

# Compared against when the e-mail address is unknown, so that a wrong address takes as
# long as a wrong password and the answer does not tell which accounts exist.
_UNKNOWN = generate_password_hash(secrets.token_urlsafe(16), method="scrypt")
MIN_LENGTH = 12
# zxcvbn's score runs from 0 to 4; 3 is "safely unguessable", about 10^10 guesses.
MIN_SCORE = 3
ISSUER = "MyTimetable support"
CODE_DIGITS = 6  # pyotp's default, and what authenticator apps show
RECOVERY_CODES = 10
# Letters and digits that cannot be mistaken for one another when copied from paper.
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"


class StaffError(ValueError):
    """A staff account cannot be made as asked."""


def password_weakness(password: str, email: str) -> str | None:
    """Why ``password`` is too easy to guess (zxcvbn's feedback), or None if it is not."""
    if len(password) < MIN_LENGTH:
        return f"Use a password of at least {MIN_LENGTH} characters."
    words = [email, *email.replace("@", ".").split("."), "mytimetable", "support"]
    result = zxcvbn(password[:100], user_inputs=words)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    reasons = [feedback["warning"], *feedback["suggestions"]]
    return " ".join(r for r in reasons if r) or "This password is too easy to guess."


def create_staff(email: str, password: str | None = None) -> tuple[StaffUser, str | None]:
    """Add a staff member; with no password, make one and return it (shown once)."""
    email = email.strip().lower()
    if "@" not in email:
        raise StaffError("Give the staff member's e-mail address.")
    if find(email) is not None:
        raise StaffError(f"{email} already has an account.")
    password_hash, generated = _password_hash(email, password)
    staff = StaffUser(email=email, password_hash=password_hash)
    db.session.add(staff)
    record(None, "support (command line)", "staff_created", email)
    return staff, generated


def set_password(email: str, password: str | None = None) -> str | None:
    """Give a staff member a new password (a forgotten one); with none, make one and return
    it (shown once). The authenticator app stays as it is."""
    staff = _existing(email)
    staff.password_hash, generated = _password_hash(staff.email, password)
    record(None, "support (command line)", "staff_password_set", staff.email)
    return generated


def _password_hash(email: str, password: str | None) -> tuple[str, str | None]:
    """The hash of ``password``, refused when weak; with none, of a made one, returned too."""
    generated = None
    if password is None:
        password = generated = secrets.token_urlsafe(18)
    weakness = password_weakness(password, email)
    if weakness:
        raise StaffError(f"That password is too weak: {weakness}")
    return generate_password_hash(password, method="scrypt"), generated


def reset_authenticator(email: str) -> None:
    """Forget a staff member's authenticator app and recovery codes (a lost phone): the
    next sign-in enrols a new app, after the password."""
    staff = _existing(email)
    staff.totp_secret_encrypted, staff.totp_last_step = None, None
    staff.recovery_codes = []
    record(None, "support (command line)", "second_factor_reset", staff.email)


def _existing(email: str) -> StaffUser:
    staff = find(email)
    if staff is None:
        raise StaffError(f"No staff account for {email.strip().lower()}.")
    return staff


def find(email: str) -> StaffUser | None:
    """The staff member with this address (any case)."""
    return db.session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.lower()))


def authenticate(email: str, password: str) -> StaffUser | None:
    """The active staff member these credentials belong to; failures are audited. The
    second factor is still to come (``verify_second_factor`` or ``enrol``)."""
    staff = find(email.strip())
    valid = check_password_hash(staff.password_hash if staff else _UNKNOWN, password)
    if staff is None or not valid or not staff.active:
        record(None, email.strip()[:320] or "(empty)", "sign_in_failed", "wrong e-mail or password")
        db.session.commit()
        # Not the address typed: it may be a password typed into the wrong field.
        log.warning("Staff sign-in refused: wrong e-mail address or password (see the audit).")
        return None
    return staff


def enrolled(staff: StaffUser) -> bool:
    """Whether the staff member has an authenticator app."""
    return staff.totp_secret_encrypted is not None


def new_totp_secret() -> str:
    """A fresh TOTP secret (base32, 160 bits) for an enrolment."""
    return pyotp.random_base32(length=32)


def totp_secret(staff: StaffUser) -> str:
    """The staff member's TOTP secret (base32)."""
    return security.decrypt(staff.totp_secret_encrypted).decode()


def enrolment_qr(staff: StaffUser, secret: str) -> str:
    """The ``otpauth://`` address of ``secret`` as an inline SVG QR code for the
    authenticator app to scan."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=staff.email, issuer_name=ISSUER)
    return segno.make(uri, error="m").svg_inline(scale=4, border=4, title="QR code")


def _accepted_step(secret: str, code: str, after: int) -> int | None:
    """The time step whose code ``code`` is, among the current one and one either side (an
    authenticator's clock may drift), if it is later than ``after``."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    for offset in (-1, 0, 1):
        step = totp.timecode(now) + offset
        expected = totp.at(now, counter_offset=offset).encode()
        if step > after and hmac.compare_digest(expected, code.encode()):
            return step
    return None


def enrol(staff: StaffUser, secret: str, code: str) -> list[str] | None:
    """Keep ``secret`` as the staff member's authenticator once ``code`` shows the app has
    it; return fresh recovery codes (shown once), or None when the code is not right."""
    step = _accepted_step(secret, code, after=0)
    if step is None:
        record(None, staff.email, "second_factor_failed", "enrolment code not right")
        db.session.commit()
        log.warning(
            "Staff member %s: the enrolment's authenticator code was not right.", staff.email
        )
        return None
    staff.totp_secret_encrypted = security.encrypt(secret.encode())
    staff.totp_last_step = step
    codes = _replace_recovery_codes(staff)
    _signed_in(staff, "authenticator enrolled")
    return codes


def _replace_recovery_codes(staff: StaffUser) -> list[str]:
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        for _ in range(RECOVERY_CODES)
    ]
    staff.recovery_codes = [
        RecoveryCode(code_hash=generate_password_hash(code, method="scrypt")) for code in codes
    ]
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def verify_second_factor(staff: StaffUser, code: str) -> bool:
    """Whether ``code`` is the staff member's current authenticator code (not used before)
    or one of their unused recovery codes (used up now); sign them in if so."""
    if len(code) == CODE_DIGITS and code.isdigit():
        step = _accepted_step(totp_secret(staff), code, after=staff.totp_last_step or 0)
        # Taken only if no other request took this step (or a later one) meanwhile.
        taken = step is not None and _claim(
            update(StaffUser)
            .where(StaffUser.id == staff.id)
            .where(or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
            .values(totp_last_step=step)
        )
        if taken:
            _signed_in(staff)
            return True
    else:
        code = code.replace("-", "").lower()
        for recovery in staff.recovery_codes:
            if recovery.used_at is None and check_password_hash(recovery.code_hash, code):
                if _claim(
                    update(RecoveryCode)
                    .where(RecoveryCode.id == recovery.id, RecoveryCode.used_at.is_(None))
                    .values(used_at=utcnow())
                ):
                    _signed_in(staff, "with a recovery code")
                    return True
                break
    record(None, staff.email, "second_factor_failed", "code not right or used before")
    db.session.commit()
    log.warning("Staff member %s: second factor refused (not right or used before).", staff.email)
    return False


def _claim(statement) -> bool:
    """Run a guarded UPDATE; whether it changed the row (a concurrent request did not)."""
    return db.session.execute(statement).rowcount == 1


def _signed_in(staff: StaffUser, detail: str = "") -> None:
    staff.last_sign_in_at = utcnow()
    record(None, staff.email, "signed_in", detail)
    db.session.commit()
    log.info("Staff member %s signed in%s.", staff.email, f" ({detail})" if detail else "")


def reset_demo_account(email: str) -> tuple[str, str]:
    """Demo data only: (re)make the demo staff account with a fresh password, enrolled in
    an authenticator (the secret it had, if any, so that an app's entry keeps working).
    Return the password and the TOTP secret."""
    password = secrets.token_urlsafe(12)
    member = find(email)
    if member is None:
        member, _ = create_staff(email, password)
    member.password_hash = generate_password_hash(password, method="scrypt")
    if not enrolled(member):
        member.totp_secret_encrypted = security.encrypt(new_totp_secret().encode())
    return password, totp_secret(member)
