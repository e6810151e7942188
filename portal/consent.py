"""Sign-ins and consent at Microsoft for every purpose, and Microsoft's answer to them.

The wizard (an administrator checking the configuration), the connect pages (end users),
an administrator granting consent for the whole organisation (from either) and an
administrator signing in to get back into the wizard after their link expired share one
redirect URI, ``connect.callback``. The flow or the consent request is kept whole in the
server-side session until the answer arrives; ``answer`` then hands it to what started it,
and chooses the page that explains a sign-in that did not complete.
"""

import logging
import math
import secrets
from enum import StrEnum

from flask import current_app, flash, g, redirect, render_template, session, url_for
from flask_babel import gettext as _

from . import connections, invitations, verification
from .extensions import db
from .microsoft import identity
from .microsoft.clouds import cloud
from .microsoft.errors import MicrosoftError, advice_for
from .models import Configuration, Invitation, Method, Status, record
from .urls import external, redirect_uri

# Who the audit trail names for what an administrator does through the wizard or the
# organisation consent page.
ADMIN = "administrator (invitation link)"
ORGANISATION_ADMIN = "administrator (organisation consent page)"
# The vendor's sign-in app is registered in the worldwide cloud: tenants of a national
# cloud cannot sign in to it.
SIGN_IN_CLOUD = "worldwide"

log = logging.getLogger(__name__)


class Purpose(StrEnum):
    """Why a browser was sent to Microsoft."""

    VERIFY = "verify"  # the wizard's check of a delegated configuration (a sign-in)
    CONNECT = "connect"  # an end user's connection, or consent from the connect pages
    SETUP = "setup"  # admin consent from the wizard
    RETURN = "return"  # an administrator of the tenant signing in to reopen the wizard


def start_sign_in(
    configuration: Configuration,
    purpose: Purpose,
    login_hint: str | None = None,
    prompt: str | None = None,
    **remember,
) -> str:
    """Begin the authorization code flow; return the address to send the browser to."""
    flow = identity.begin_sign_in(
        identity.registration(configuration),
        redirect_uri(),
        login_hint=login_hint,
        prompt=prompt,
        colours=configuration.outlook_categories,
    )
    session["sign_in"] = {
        "purpose": purpose,
        "flow": flow,
        "configuration_id": configuration.id,
        **remember,
    }
    return flow["auth_uri"]


def administrator_sign_in_offered(configuration: Configuration | None) -> bool:
    """Whether an administrator of the configuration's tenant may sign in with Microsoft
    to reopen the wizard: the vendor's sign-in app is set up, and the configuration's
    tenant GUID is known (a verification has read it from Microsoft)."""
    return bool(
        current_app.config.get("SIGNIN_CLIENT_ID")
        and configuration is not None
        and configuration.tenant_guid
        and configuration.cloud == SIGN_IN_CLOUD
    )


def _sign_in_app(configuration: Configuration) -> identity.AppRegistration:
    return identity.sign_in_registration(
        cloud(SIGN_IN_CLOUD),
        configuration.tenant_guid,
        current_app.config["SIGNIN_CLIENT_ID"],
        current_app.config["SIGNIN_CREDENTIAL"],
    )


def start_administrator_sign_in(invitation: Invitation) -> str:
    """Send an administrator whose link ran out to Microsoft, to sign in to the tenant of
    the link's configuration; return the address to send the browser to."""
    configuration = invitation.institution.configuration
    flow = identity.begin_administrator_sign_in(_sign_in_app(configuration), redirect_uri())
    session["sign_in"] = {
        "purpose": Purpose.RETURN,
        "flow": flow,
        "configuration_id": configuration.id,
        "invitation_id": invitation.id,
    }
    return flow["auth_uri"]


def start_admin_consent(configuration: Configuration, purpose: Purpose) -> str:
    """Ask Microsoft for consent for the whole organisation; return where to send the browser."""
    state = secrets.token_urlsafe(24)
    session["admin_consent"] = {
        "state": state,
        "configuration_id": configuration.id,
        "purpose": purpose,
    }
    return identity.admin_consent_url(identity.registration(configuration), redirect_uri(), state)


def answer(args: dict):
    """Microsoft's answer at the redirect URI, handed to whatever started it in this browser.

    The state in the answer must match a sign-in or consent request kept in this
    browser's server-side session; anything else is stale, replayed or forged.
    """
    state = args.get("state")
    # Each pending request leaves the session only once the answer's state is its own: a
    # forged or stale callback must not cancel the sign-in still under way.
    consent = session.get("admin_consent")
    if consent and state and state == consent.get("state"):
        session.pop("admin_consent")
        return _admin_consent(consent, args)
    sign_in = session.get("sign_in")
    if sign_in and state and state == (sign_in.get("flow") or {}).get("state"):
        session.pop("sign_in")
        if sign_in.get("purpose") == Purpose.VERIFY:
            return _verification_sign_in(sign_in, args)
        if sign_in.get("purpose") == Purpose.CONNECT:
            return _connect_sign_in(sign_in, args)
        if sign_in.get("purpose") == Purpose.RETURN:
            return _administrator_sign_in(sign_in, args)
    return _stale()


def problem(error: MicrosoftError, configuration: Configuration):
    """The end user's page for a sign-in that did not complete: what happened, what next."""
    institution = configuration.institution
    return render_template(
        "connect/problem.html",
        kind=error.advice.page,
        error=error,
        advice=error.advice,
        institution=institution,
        connect_url=url_for("connect.start", slug=institution.slug),
        consent_url=external("connect.organisation_consent", slug=institution.slug),
    )


def _stale():
    return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400


def _configuration(configuration_id: int, needs_invitation: bool) -> Configuration | None:
    configuration = db.session.get(Configuration, configuration_id)
    if configuration is None or (needs_invitation and session.get("invitation_id") is None):
        return None
    return configuration


def _redeem(configuration: Configuration, flow: dict | None, args: dict) -> identity.SignIn:
    """The signed-in account, which must belong to the configuration's tenant."""
    try:
        return identity.finish_sign_in(
            identity.registration(configuration),
            flow,
            args,
            expected_tenant=configuration.tenant_guid,
        )
    except MicrosoftError as error:
        log.warning(
            "Sign-in to %s did not complete: %s.",
            configuration.institution.slug,
            error.display_code or error.code,
        )
        raise


def _connect_sign_in(sign_in: dict, args: dict):
    configuration = _configuration(sign_in["configuration_id"], needs_invitation=False)
    if configuration is None or configuration.status != Status.APPROVED:
        return _stale()
    g.institution = configuration.institution
    try:
        connection = connections.connect(
            configuration, _redeem(configuration, sign_in.get("flow"), args)
        )
    except MicrosoftError as error:
        return problem(error, configuration), 502 if error.code == "unreachable" else 400
    session["connection_id"] = connection.id
    # A session ID planted in this browser before the sign-in must not see the connection.
    current_app.session_interface.regenerate(session)
    return redirect(url_for("connect.status", slug=configuration.institution.slug))


def _verification_sign_in(sign_in: dict, args: dict):
    configuration = _configuration(sign_in["configuration_id"], needs_invitation=True)
    if configuration is None:
        return _stale()
    try:
        signed_in = _redeem(configuration, sign_in.get("flow"), args)
    except MicrosoftError as error:
        signed_in = error
    verification.finish_delegated_checks(configuration, sign_in["run_id"], signed_in, ADMIN)
    return redirect(url_for("setup.verify"))


def _admin_consent(consent: dict, args: dict):
    from_wizard = consent.get("purpose", Purpose.SETUP) == Purpose.SETUP
    configuration = _configuration(consent["configuration_id"], needs_invitation=from_wizard)
    if configuration is None:
        return _stale()
    actor = ADMIN if from_wizard else ORGANISATION_ADMIN
    try:
        tenant = identity.finish_admin_consent(
            identity.registration(configuration),
            args,
            consent["state"],
            configuration.tenant_guid or configuration.tenant_id,
        )
    except MicrosoftError as error:
        record(configuration.institution, actor, "admin_consent_failed", error.code)
        db.session.commit()
        if from_wizard:
            return _checks_after_consent(configuration, error)
        message = _(
            "Consent for the organisation was not granted (%(code)s): %(cause)s %(action)s",
            code=error.display_code or error.code,
            cause=error.advice.cause,
            action=error.advice.action,
        )
        return render_template(
            "connect/consent_result.html",
            ok=False,
            message=message,
            institution=configuration.institution,
        ), 400
    record(configuration.institution, actor, "admin_consent_granted", tenant)
    db.session.commit()
    if from_wizard:
        return _checks_after_consent(configuration, None)
    return render_template(
        "connect/consent_result.html", ok=True, message="", institution=configuration.institution
    )


def _checks_after_consent(configuration: Configuration, refused: MicrosoftError | None):
    """Back in the wizard from granting consent for the organisation: the checks run again
    at once, so that step 5 shows one result, the chain's, rather than a notice about the
    consent beside results from before it.

    Delegated: the links before the sign-in run, then the administrator, still signed in at
    Microsoft, is sent to sign in for the last links; a refused consent is the sign-in's
    failure. Application: the chain runs again if it has a test mailbox to check.
    """
    if configuration.method == Method.DELEGATED:
        run_id = verification.begin_delegated_checks(configuration, ADMIN)
        if run_id is None:
            return redirect(url_for("setup.verify"))
        if refused is not None:
            verification.finish_delegated_checks(configuration, run_id, refused, ADMIN)
            return redirect(url_for("setup.verify"))
        try:
            return redirect(start_sign_in(configuration, Purpose.VERIFY, run_id=run_id))
        except MicrosoftError as error:
            verification.finish_delegated_checks(configuration, run_id, error, ADMIN)
            return redirect(url_for("setup.verify"))
    if refused is not None:
        # The results on the page are made current, so that they never look green beside
        # a refusal that left the app without what it needs, nor red when it has it.
        if configuration.test_mailbox:
            verification.run_application_checks(configuration, ADMIN)
        if configuration.verified:
            flash(
                _(
                    "Consent for the organisation was not granted this time (%(code)s), but "
                    "the app already has what it needs: every check below passed again.",
                    code=refused.display_code or refused.code,
                ),
                "info",
            )
        else:
            flash(
                _(
                    "Consent for the organisation was not granted (%(code)s): %(cause)s %(action)s",
                    code=refused.display_code or refused.code,
                    cause=refused.advice.cause,
                    action=refused.advice.action,
                ),
                "error",
            )
    elif configuration.test_mailbox:
        verification.run_application_checks(configuration, ADMIN)
    else:
        flash(
            _(
                "Consent was granted for the whole organisation. Enter a test mailbox below "
                "to check the connection."
            ),
            "success",
        )
    return redirect(url_for("setup.verify"))


def _administrator_sign_in(sign_in: dict, args: dict):
    """An administrator back from Microsoft: if the ID token shows an administrator role
    in the configuration's tenant, the wizard opens in this browser as a confirmed
    invitation opens it (a new session under a new ID)."""
    invitation = db.session.get(Invitation, sign_in.get("invitation_id") or 0)
    configuration = db.session.get(Configuration, sign_in.get("configuration_id") or 0)
    if (
        invitation is None
        or configuration is None
        or invitation.institution_id != configuration.institution_id
        or not invitations.way_back_open(invitation)
        or not administrator_sign_in_offered(configuration)
    ):
        return _stale()
    institution = configuration.institution
    try:
        administrator = identity.finish_administrator_sign_in(
            _sign_in_app(configuration), sign_in.get("flow"), args
        )
    except MicrosoftError as error:
        log.warning(
            "An administrator's sign-in for %s was refused: %s.",
            institution.slug,
            error.display_code or error.code,
        )
        record(
            institution,
            "administrator (Microsoft sign-in)",
            "administrator_sign_in_refused",
            f"{error.display_code or error.code}: {error.message}"[:500],
        )
        db.session.commit()
        status = 502 if error.code == "unreachable" else 403
        return render_template(
            "setup/sign_in_refused.html", error=error, advice=error.advice, institution=institution
        ), status
    hours = math.ceil(current_app.permanent_session_lifetime.total_seconds() / 3600)
    opened = invitations.open_by_sign_in(institution, administrator.username, hours)
    record(
        institution,
        f"{administrator.username} (Microsoft sign-in)",
        "wizard_opened_by_sign_in",
        f"{', '.join(administrator.roles)} in tenant {administrator.tenant_guid}",
    )
    session.clear()
    session["invitation_id"] = opened.id
    current_app.session_interface.regenerate(session)  # a new ID for a new privilege
    db.session.commit()
    return redirect(url_for("setup.resume"))
