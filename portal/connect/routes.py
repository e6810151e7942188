"""Microsoft's answers to sign-ins and consent requests started by the portal."""

from flask import flash, redirect, render_template, request, session, url_for

from .. import verification
from ..extensions import db
from ..microsoft.errors import MicrosoftError, advice_for
from ..microsoft.identity import finish_admin_consent
from ..models import Configuration, record
from . import bp


@bp.get("/callback")
def callback():
    """The redirect URI: hand the answer to whatever started the sign-in in this browser.

    The state in the answer must match a sign-in or consent request kept in this
    browser's server-side session; anything else is stale, replayed or forged.
    """
    state = request.args.get("state")
    consent = session.get("admin_consent")
    if consent and state and state == consent.get("state"):
        session.pop("admin_consent")
        return _admin_consent(consent)
    sign_in = session.get("sign_in")
    if sign_in and sign_in.get("purpose") == "verify":
        session.pop("sign_in")
        return _verification_sign_in(sign_in)
    advice = advice_for("state_mismatch")
    return render_template("connect/stale.html", advice=advice), 400


def _configuration(configuration_id: int) -> Configuration | None:
    configuration = db.session.get(Configuration, configuration_id)
    if configuration is None or session.get("invitation_id") is None:
        return None
    return configuration


def _verification_sign_in(sign_in: dict):
    configuration = _configuration(sign_in["configuration_id"])
    if configuration is None:
        return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400
    verification.finish_delegated_checks(
        configuration,
        sign_in["run_id"],
        sign_in.get("flow"),
        request.args.to_dict(),
        "administrator (invitation link)",
    )
    return redirect(url_for("setup.verify"))


def _admin_consent(consent: dict):
    configuration = _configuration(consent["configuration_id"])
    if configuration is None:
        return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400
    try:
        tenant = finish_admin_consent(
            request.args.to_dict(),
            consent["state"],
            configuration.tenant_guid or configuration.tenant_id,
        )
    except MicrosoftError as error:
        record(
            configuration.institution,
            "administrator (invitation link)",
            "admin_consent_failed",
            error.code,
        )
        db.session.commit()
        flash(
            f"Consent for the organisation was not granted ({error.display_code}): "
            f"{error.advice.cause} {error.advice.action}",
            "error",
        )
        return redirect(url_for("setup.verify"))
    record(
        configuration.institution,
        "administrator (invitation link)",
        "admin_consent_granted",
        tenant,
    )
    db.session.commit()
    flash(
        "Consent was granted for the whole organisation: users will not be asked. "
        "Now sign in to check the connection.",
        "success",
    )
    return redirect(url_for("setup.verify"))
