"""Institutions and the invitation links that open the setup wizard for them."""

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from .extensions import db
from .models import Configuration, Hosting, Institution, Invitation, record, utcnow
from .security import slugify, token_hash


class InvitationError(Exception):
    """An invitation link that cannot open the wizard; ``reason`` is missing, unknown or expired."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def invitation_url(token: str) -> str:
    """The link an administrator opens, on the portal's external URL."""
    # Built by hand: invitations are also made on the command line, outside a request.
    return f"{current_app.config['EXTERNAL_URL']}/setup/i/{token}"


def _unique_slug(name: str) -> str:
    base = slugify(name)
    slug, n = base, 1
    while db.session.scalar(select(Institution.id).filter_by(slug=slug)) is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_institution(name: str, hosting: str, contact_email: str, actor: str) -> Institution:
    """Add an institution with an empty draft configuration."""
    if hosting not in (Hosting.MANAGED, Hosting.ON_PREMISES):
        raise ValueError("hosting must be 'managed' or 'on_premises'")
    institution = Institution(
        name=name.strip(), slug=_unique_slug(name), hosting=hosting, contact_email=contact_email
    )
    institution.configuration = Configuration()
    db.session.add(institution)
    db.session.flush()
    record(institution, actor, "institution_created", f"{name} ({hosting})")
    return institution


def issue_invitation(institution: Institution, actor: str, days: int | None = None) -> str:
    """Make a new invitation link for ``institution``; return its URL (shown once).

    The link is a key to the institution's configuration: the older links stop working,
    so that a link forwarded, leaked or kept in an old e-mail does not outlive its successor.
    """
    token = secrets.token_urlsafe(32)
    days = days or current_app.config["INVITATION_DAYS"]
    now = utcnow()
    older = select(Invitation).where(
        Invitation.institution_id == institution.id,
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )
    for invitation in db.session.scalars(older):
        invitation.revoked_at = now
        record(institution, actor, "invitation_revoked", f"link #{invitation.id}, replaced")
    db.session.add(
        Invitation(
            institution=institution,
            token_hash=token_hash(token),
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    record(institution, actor, "invitation_issued", f"valid for {days} days")
    return invitation_url(token)


def resolve(token: str | None) -> Invitation:
    """The invitation a token belongs to, if it may still open the wizard."""
    if not token:
        raise InvitationError("missing")
    invitation = db.session.scalar(select(Invitation).filter_by(token_hash=token_hash(token)))
    if invitation is None:
        raise InvitationError("unknown")
    if invitation.expired:
        raise InvitationError("expired")
    return invitation


def other_institution(invitation_id: int | None, invitation: Invitation) -> str | None:
    """The name of the institution whose wizard this browser has open, if not the one
    ``invitation`` opens."""
    if invitation_id is None or invitation_id == invitation.id:
        return None
    current_invitation = db.session.get(Invitation, invitation_id)
    if current_invitation is None or current_invitation.institution_id == invitation.institution_id:
        return None
    return current_invitation.institution.name


# Every wizard page needs these with the invitation, loaded in one query.
_CURRENT = (
    select(Invitation)
    .join(Invitation.institution)
    .join(Institution.configuration)
    .outerjoin(Configuration.certificate)
    .options(
        contains_eager(Invitation.institution)
        .contains_eager(Institution.configuration)
        .contains_eager(Configuration.certificate)
    )
    .where(Invitation.id == bindparam("invitation_id"))
)


def current(invitation_id: int | None) -> Invitation:
    """The invitation remembered in the session, checked again on every request, with its
    institution, configuration and certificate loaded."""
    invitation = (
        db.session.scalar(_CURRENT, {"invitation_id": invitation_id}) if invitation_id else None
    )
    if invitation is None:
        raise InvitationError("missing")
    if invitation.expired:
        raise InvitationError("expired")
    return invitation
