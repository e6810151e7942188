"""Institutions and the invitation links that open the setup wizard for them."""

import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from . import notifications
from .extensions import db
from .models import (
    Configuration,
    Hosting,
    Institution,
    Invitation,
    InvitationState,
    record,
    utcnow,
)
from .security import slugify, token_hash


class InvitationError(Exception):
    """An invitation link that cannot open the wizard. ``reason`` is missing, unknown, or
    the link's ``InvitationState`` (expired, replaced, revoked); ``invitation`` is the link's
    row when the token is known, so that the page can offer a way back in."""

    def __init__(self, reason: str, invitation: Invitation | None = None):
        super().__init__(reason)
        self.reason = reason
        self.invitation = invitation


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
        invitation.revoked_at, invitation.replaced = now, True
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
        raise InvitationError(invitation.state, invitation)
    return invitation


def resolve_any(token: str | None) -> Invitation | None:
    """The invitation a token belongs to, whatever its state."""
    if not token:
        return None
    return db.session.scalar(select(Invitation).filter_by(token_hash=token_hash(token)))


def way_back_open(invitation: Invitation) -> bool:
    """Whether the administrator holding this link may get back in without support: the
    link ran out or was replaced, and support has not revoked the institution's newest
    link on purpose (a revocation is a decision about the institution, not one link)."""
    if invitation.state not in (InvitationState.EXPIRED, InvitationState.REPLACED):
        return False
    newest = db.session.scalar(
        select(Invitation)
        .where(
            Invitation.institution_id == invitation.institution_id,
            Invitation.signed_in_as.is_(None),
        )
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(1)
    )
    return newest is None or newest.state != InvitationState.REVOKED


def open_by_sign_in(institution: Institution, upn: str, hours: int) -> Invitation:
    """An invitation for an administrator who proved at Microsoft that they administer the
    configuration's tenant: it opens the wizard in their browser only, so it has no link
    (its token is never shown), lasts ``hours`` (a wizard session), and leaves the
    institution's links as they are."""
    invitation = Invitation(
        institution=institution,
        token_hash=token_hash(secrets.token_urlsafe(32)),
        expires_at=utcnow() + timedelta(hours=hours),
        signed_in_as=upn,
        last_used_at=utcnow(),
    )
    db.session.add(invitation)
    db.session.flush()
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
        raise InvitationError(invitation.state, invitation)
    return invitation


def fresh_link_offered() -> bool:
    """Whether the expired-link page may offer to e-mail a fresh link: links travel only by
    SMTP (the outbox never keeps one), so without SMTP there is nothing to send."""
    return bool(current_app.config.get("SMTP_URL"))


def send_fresh_link(invitation: Invitation, actor: str) -> None:
    """E-mail a new link for the institution of ``invitation`` (a link that ran out) to
    the institution's registered contact address, never to one the visitor names; the
    older links stop working, as with every new link."""
    institution = invitation.institution
    link = issue_invitation(institution, actor)
    record(
        institution,
        actor,
        "fresh_link_sent",
        f"asked for from link #{invitation.id}; sent to the registered contact address",
    )
    # The administrator's language once known; until then the one the page was asked in.
    with force_locale(institution.language or str(get_locale() or "en")):
        notifications.queue(
            institution,
            _("MyTimetable: a new link to set up Office 365 for %(name)s", name=institution.name),
            _(
                "A new link to the MyTimetable setup wizard for %(name)s was asked for on the "
                "page of an expired link. It is sent only to this address, the contact "
                "address MyTimetable has for your institution.",
                name=institution.name,
            )
            + f"\n\n{notifications.LINK}\n\n"
            + _(
                "The link is valid for %(days)s days and replaces the earlier links. What you "
                "already entered is kept. If you did not ask for it, you can ignore this "
                "e-mail.",
                days=current_app.config["INVITATION_DAYS"],
            ),
            link=link,
        )


HIDDEN = "\N{BULLET}" * 3


def masked_address(address: str) -> str:
    """An e-mail address with its local part hidden but for the first character, so that
    the person it belongs to recognises it and others learn little from it."""
    local, _at, domain = address.rpartition("@")
    if not local:
        return HIDDEN
    return f"{local[0]}{HIDDEN}@{domain}"
