"""A way back into the wizard for an administrator whose invitation link ran out.

The page of an expired (or replaced) link offers two ways back, both tied to the
institution the link names: a fresh link e-mailed to the institution's registered contact
address, and a Microsoft sign-in as an administrator of the configuration's tenant. A link
that support revoked on purpose gets neither, only support's contact.

Which institution: the one of the expired link. Its token still identifies the
institution, so nobody is asked to type a domain and nobody learns from the portal which
institutions use which tenant; an administrator without any link asks support.
"""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import consent, invitations
from ..extensions import db, limiter
from ..forms import ConfirmForm
from ..microsoft.errors import MicrosoftError
from ..models import InvitationState
from ..security import token_hash
from . import bp

# Who the audit trail names for a fresh link asked for on an expired link's page.
VISITOR = "visitor (expired invitation link page)"

# Wizard pages that open without a valid invitation in the session.
OPEN_ENDPOINTS = {"setup.open_invitation", "setup.fresh_link", "setup.administrator_sign_in"}


@bp.app_context_processor
def support_contact():
    """MyTimetable support's contact (``PORTAL_SUPPORT_CONTACT``) for every page."""
    return {"support_contact": current_app.config.get("SUPPORT_CONTACT") or {}}


def invalid_invitation_page(error: invitations.InvitationError, token: str | None = None):
    """The page of a link that cannot open the wizard, with the ways back in it allows."""
    invitation = error.invitation
    way_back = (
        invitation is not None and token is not None and invitations.way_back_open(invitation)
    )
    configuration = invitation.institution.configuration if invitation else None
    page = render_template(
        "setup/invitation_invalid.html",
        reason=error.reason,
        token=token if way_back else None,
        form=ConfirmForm(),
        fresh_link=way_back and invitations.fresh_link_offered(),
        sign_in=way_back and consent.administrator_sign_in_offered(configuration),
        recipient=invitations.masked_address(invitation.institution.contact_email)
        if way_back
        else None,
        states=InvitationState,
    )
    status = 404 if error.reason in ("missing", "unknown") else 410
    return page, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _expired_invitation(token: str):
    """The invitation of ``token`` if it offers a way back in; 404 otherwise."""
    invitation = invitations.resolve_any(token)
    if invitation is None or not invitations.way_back_open(invitation):
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return invitation


def _link_key() -> str:
    return "fresh-link:" + token_hash(request.view_args.get("token") or "")


def _recipient_key() -> str:
    """Fresh links asked for, counted per address they go to, whichever link asked (by
    the address's hash: the limiter logs its keys)."""
    invitation = invitations.resolve_any(request.view_args.get("token"))
    address = invitation.institution.contact_email.lower() if invitation else "-"
    return "fresh-link-to:" + token_hash(address)


def _fresh_link_limit():
    return current_app.config["FRESH_LINK_LIMIT"]


@bp.post("/i/<token>/fresh-link")
@limiter.limit(_fresh_link_limit, key_func=_link_key, error_message="Too many fresh links")
@limiter.limit(_fresh_link_limit, key_func=_recipient_key, error_message="Too many fresh links")
def fresh_link(token: str):
    """E-mail a new link to the institution's registered contact address."""
    if not invitations.fresh_link_offered():
        abort(404)
    invitation = _expired_invitation(token)
    invitations.send_fresh_link(invitation, VISITOR)
    db.session.commit()
    flash(
        _(
            "A new link is on its way to %(address)s, the address MyTimetable has for your "
            "institution. It can take a few minutes; check your spam folder too.",
            address=invitations.masked_address(invitation.institution.contact_email),
        ),
        "success",
    )
    return redirect(url_for("setup.open_invitation", token=token), 303)


@bp.post("/i/<token>/sign-in")
def administrator_sign_in(token: str):
    """Send an administrator of the configuration's tenant to Microsoft to sign in."""
    invitation = _expired_invitation(token)
    if not consent.administrator_sign_in_offered(invitation.institution.configuration):
        abort(404)
    try:
        return redirect(consent.start_administrator_sign_in(invitation), 303)
    except MicrosoftError as error:
        flash(f"{error.advice.cause} {error.advice.action}", "error")
        return redirect(url_for("setup.open_invitation", token=token), 303)
