"""The console's pages. Every page but the sign-in steps requires a signed-in staff member."""

import time

from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_limiter.util import get_remote_address
from markupsafe import Markup
from sqlalchemy import select

from .. import (
    api_keys,
    groups,
    invitations,
    provisioning,
    review,
    rotation,
    security,
    staff,
    verification,
)
from ..extensions import db, limiter
from ..forms import ConfirmForm, HeldRemovalsForm, RemoveMailboxesForm
from ..microsoft.clouds import CLOUDS
from ..microsoft.errors import MicrosoftError
from ..models import (
    ApiKey,
    AuditEvent,
    Certificate,
    Configuration,
    Institution,
    Invitation,
    Method,
    Notification,
    StaffUser,
    Status,
    record,
    utcnow,
)
from ..paging import PAGE_SIZE, page_argument, paginate, search_argument
from ..sync import colours, engine
from . import bp
from .forms import (
    ApiKeyForm,
    EnrolmentForm,
    FeedForm,
    InstitutionForm,
    InstitutionSettingsForm,
    ReturnForm,
    SecondFactorForm,
    SignInForm,
)

EXPIRY_WARNING_DAYS = 30


# The sign-in's steps: the password, then the authenticator's code (or, at the first
# sign-in, adding the app). Until the code, the session holds ``staff_pending`` only.
SIGN_IN_STEPS = frozenset({"support.sign_in", "support.enrol", "support.second_factor"})


def _signin_key() -> str:
    """Failed sign-ins are counted per client address and e-mail address."""
    return f"{request.remote_addr}|{request.form.get('email', '').strip().lower()}"


def _code_key() -> str:
    """Wrong codes are counted per staff member, from any address: whoever is guessing
    already has the password."""
    return f"staff:{session.get('staff_pending')}"


def _refused(response) -> bool:
    return response.status_code == 401


def _failure_limit(key_func, message: str):
    """``PORTAL_SIGNIN_LIMIT`` failed attempts per ``key_func``, counting refusals only."""
    return limiter.limit(
        lambda: current_app.config["SIGNIN_LIMIT"],
        key_func=key_func,
        methods=["POST"],
        deduct_when=_refused,
        error_message=message,
    )


# Failed passwords and codes from one client address, whatever the account: one shared count.
address_limit = limiter.shared_limit(
    lambda: current_app.config["SIGNIN_ADDRESS_LIMIT"],
    scope="staff-sign-in-address",
    key_func=get_remote_address,
    methods=["POST"],
    deduct_when=_refused,
    error_message="Too many failed sign-ins from this address",
)


@bp.before_request
def require_staff():
    """Sign out a staff member idle too long; send anyone who is not a signed-in staff
    member to the sign-in page."""
    if "staff_id" in session or "staff_pending" in session:
        idle = current_app.config["STAFF_IDLE_MINUTES"]
        if time.time() - session.get("staff_seen_at", 0) > idle * 60:
            session.clear()
            flash(
                _("You were signed out after %(minutes)s minutes without activity.", minutes=idle),
                "info",
            )
            return redirect(url_for("support.sign_in"))
        session["staff_seen_at"] = int(time.time())
    if request.endpoint in SIGN_IN_STEPS:
        return None
    staff_id = session.get("staff_id")
    member = db.session.get(StaffUser, staff_id) if staff_id else None
    if member is None or not member.active:
        return redirect(url_for("support.sign_in"))
    g.staff = member
    return None


@bp.context_processor
def console_context():
    """The signed-in staff member and a confirm form for the console's buttons."""
    return {
        "staff": getattr(g, "staff", None),
        "confirm": ConfirmForm(formdata=None),
        "console": True,
    }


def _pending() -> StaffUser | None:
    """The staff member whose password was right, before their code."""
    staff_id = session.get("staff_pending")
    member = db.session.get(StaffUser, staff_id) if staff_id else None
    return member if member is not None and member.active else None


def _start_session(key: str, member: StaffUser) -> None:
    """A new session ID for each step up in trust, holding only ``key``."""
    session.clear()
    session[key] = member.id
    session["staff_seen_at"] = int(time.time())
    current_app.session_interface.regenerate(session)


@bp.route("/sign-in", methods=["GET", "POST"])
@_failure_limit(_signin_key, "Too many failed sign-ins")
@address_limit
def sign_in():
    """Staff sign-in, first step: the password."""
    form = SignInForm()
    if form.validate_on_submit():
        member = staff.authenticate(form.email.data, form.password.data)
        if member is None:
            form.password.errors.append(_("The e-mail address or password is not right."))
            return render_template("support/sign_in.html", form=form), 401
        _start_session("staff_pending", member)
        step = "support.second_factor" if staff.enrolled(member) else "support.enrol"
        return redirect(url_for(step))
    return render_template("support/sign_in.html", form=form), 400 if form.errors else 200


@bp.route("/sign-in/enrol", methods=["GET", "POST"])
def enrol():
    """At the first sign-in: add an authenticator app (scan, then confirm with a code)."""
    member = _pending()
    if member is None or staff.enrolled(member):
        return redirect(url_for("support.sign_in"))
    if "staff_enrolment" not in session:
        session["staff_enrolment"] = security.encrypt(staff.new_totp_secret().encode()).decode()
    secret = security.decrypt(session["staff_enrolment"].encode()).decode()
    form = EnrolmentForm()
    if form.validate_on_submit():
        codes = staff.enrol(member, secret, form.code.data)
        if codes is not None:
            _start_session("staff_id", member)
            session["recovery_codes"] = codes
            return redirect(url_for("support.recovery_codes"))
        form.code.errors.append(
            _(
                "That code is not right. Check that the app shows the code for %(email)s, "
                "and enter its newest code.",
                email=member.email,
            )
        )
    return render_template(
        "support/enrol.html",
        form=form,
        secret=secret,
        qr=Markup(staff.enrolment_qr(member, secret)),  # noqa: S704  # segno's own SVG
        email=member.email,
    ), 400 if form.errors else 200


@bp.route("/sign-in/code", methods=["GET", "POST"])
@_failure_limit(_code_key, "Too many wrong codes")
@address_limit
def second_factor():
    """Staff sign-in, second step: the authenticator app's code, or a recovery code."""
    member = _pending()
    if member is None:
        return redirect(url_for("support.sign_in"))
    if not staff.enrolled(member):
        return redirect(url_for("support.enrol"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        if staff.verify_second_factor(member, form.code.data):
            _start_session("staff_id", member)
            return redirect(url_for("support.queue"))
        form.code.errors.append(_("That code is not right, or it was used before."))
        return render_template("support/second_factor.html", form=form), 401
    return render_template("support/second_factor.html", form=form), 400 if form.errors else 200


@bp.get("/recovery-codes")
def recovery_codes():
    """The recovery codes made at enrolment, shown this once."""
    codes = session.pop("recovery_codes", None)
    if not codes:
        return redirect(url_for("support.queue"))
    return render_template("support/recovery_codes.html", codes=codes)


@bp.post("/sign-out")
def sign_out():
    """End the staff session."""
    if ConfirmForm().validate_on_submit():
        record(None, g.staff.email, "signed_out")
        db.session.commit()
    session.clear()
    flash(_("You are signed out."), "success")
    return redirect(url_for("support.sign_in"))


@bp.get("/")
def queue():
    """Submitted configurations first, oldest first; filters, search and paging."""
    args = request.args
    filters = {
        "status": args.get("status", "")
        if args.get("status", "") in [s.value for s in Status]
        else "",
        "method": args.get("method", "")
        if args.get("method", "") in [m.value for m in Method]
        else "",
        "hosting": args.get("hosting", "")
        if args.get("hosting", "") in ("managed", "on_premises")
        else "",
        "search": search_argument(args),
    }
    result = review.queue(page=page_argument(args), **filters)
    return render_template("support/queue.html", result=result, filters=filters)


def _configuration(configuration_id: int) -> Configuration:
    configuration = db.session.get(Configuration, configuration_id)
    if configuration is None:
        abort(404)
    return configuration


@bp.get("/configurations/<int:configuration_id>")
def configuration(configuration_id: int):
    """Everything about one configuration: what approval needs, values, certificate,
    checks, mailboxes, audit trail."""
    return _configuration_page(_configuration(configuration_id))


def _configuration_page(configuration: Configuration, refusal: str | None = None, status=200):
    """The configuration page; ``refusal`` says why an action was refused (with ``status``)."""
    audit = paginate(
        select(AuditEvent)
        .where(AuditEvent.institution_id == configuration.institution_id)
        .order_by(AuditEvent.id.desc()),
        page_argument(request.args, "audit_page"),
    )
    search = search_argument(request.args)
    connections = provisioning.mailbox_page(
        configuration, search, page_argument(request.args, "mailboxes_page"), PAGE_SIZE
    )
    tasks = review.readiness(configuration)
    return render_template(
        "support/configuration.html",
        configuration=configuration,
        institution=configuration.institution,
        certificate=configuration.certificate,
        runs=configuration.runs(None)[::-1],  # newest first
        labels=verification.LABELS,
        audit=audit,
        return_form=ReturnForm(),
        cloud=CLOUDS.get(configuration.cloud),
        warning_days=EXPIRY_WARNING_DAYS,
        connections=connections,
        search=search,
        remove_form=RemoveMailboxesForm(formdata=None),
        mailboxes_open=_mailboxes_open(configuration),
        refusals=engine.refusals([c.id for c in connections.items]),
        feed_form=FeedForm(obj=configuration),
        tasks=tasks,
        missing=[task for task in tasks if not task.done],
        refusal=refusal,
        passes=groups.passes(configuration) if configuration.group else [],
        held_pass=groups.held(configuration) if configuration.group else None,
    ), status


@bp.post("/configurations/<int:configuration_id>/verify")
def verify(configuration_id: int):
    """Run the wizard's checks again, as support."""
    configuration = _configuration(configuration_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not (configuration.method and configuration.tenant_id and configuration.client_id):
        flash(_("The administrator has not entered the tenant and application yet."), "error")
    elif configuration.method == Method.APPLICATION:
        if not configuration.test_mailbox:
            flash(_("The administrator has not named a test mailbox yet."), "error")
        else:
            verification.run_application_checks(configuration, g.staff.email)
            flash(_("The checks ran again: see the newest run below."), "info")
    elif verification.begin_delegated_checks(configuration, g.staff.email, sign_in=False):
        flash(
            _(
                "Tenant, application and certificate were checked again. The sign-in link can "
                "only be checked by an administrator of the tenant."
            ),
            "info",
        )
    else:
        flash(_("The checks ran again: see the newest run below."), "info")
    return redirect(url_for("support.configuration", configuration_id=configuration.id))


@bp.post("/configurations/<int:configuration_id>/approve")
def approve(configuration_id: int):
    """Make the configuration active: only once confirmed, and only when it is complete."""
    configuration = _configuration(configuration_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not _confirmed():
        return redirect(url_for("support.confirm_approve", configuration_id=configuration.id), 303)
    try:
        review.approve(configuration, g.staff.email)
    except review.ReviewError as error:
        return _configuration_page(configuration, refusal=str(error), status=409)
    flash(_("Approved: %(name)s is active.", name=configuration.institution.name), "success")
    return redirect(url_for("support.configuration", configuration_id=configuration.id))


@bp.post("/configurations/<int:configuration_id>/return")
def return_for_changes(configuration_id: int):
    """Send the configuration back with a message."""
    configuration = _configuration(configuration_id)
    form = ReturnForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(str(errors[0]), "error")  # a lazy text cannot be stored in the session
        return redirect(url_for("support.configuration", configuration_id=configuration.id))
    try:
        review.return_for_changes(configuration, g.staff.email, form.message.data, form.step.data)
    except review.ReviewError as error:
        flash(str(error), "error")
    else:
        flash(_("Returned to the administrator with your message."), "success")
    return redirect(url_for("support.configuration", configuration_id=configuration.id))


@bp.post("/configurations/<int:configuration_id>/mailboxes")
def mailboxes(configuration_id: int):
    """Application permissions: add mailboxes for the institution, as support."""
    configuration = _configuration(configuration_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if configuration.status != Status.APPROVED or configuration.method != Method.APPLICATION:
        flash(_("Mailboxes can be added once an application configuration is approved."), "error")
        return redirect(url_for("support.configuration", configuration_id=configuration.id))
    upns, unreadable = provisioning.parse_list(request.form.get("addresses", "")[:400_000])
    try:
        outcome = provisioning.provision(configuration, upns, g.staff.email)
    except MicrosoftError as error:
        flash(f"{error.advice.cause} {error.advice.action}", "error")
    else:
        parts = [
            _(
                "Added %(added)s, %(already)s already synchronised",
                added=len(outcome.added),
                already=len(outcome.already),
            )
        ]
        if outcome.refused:
            refused = "; ".join(f"{upn} ({why})" for upn, _code, why in outcome.refused)
            parts.append(_("refused: %(mailboxes)s", mailboxes=refused))
        if unreadable:
            parts.append(_("not addresses: %(items)s", items=", ".join(unreadable)))
        flash("; ".join(parts), "info" if not outcome.refused else "error")
    return redirect(url_for("support.configuration", configuration_id=configuration.id))


def _mailboxes_open(configuration: Configuration) -> bool:
    """Mailboxes are chosen, removed and exported as on the administrator's page: for an
    approved configuration with application permissions only."""
    return configuration.status == Status.APPROVED and configuration.method == Method.APPLICATION


@bp.get("/configurations/<int:configuration_id>/mailboxes.csv")
def export_mailboxes(configuration_id: int):
    """The configuration's mailboxes (those matching the search) as CSV, as the
    administrator's page gives them."""
    configuration = _configuration(configuration_id)
    if not _mailboxes_open(configuration):
        abort(404)
    search = search_argument(request.args)
    record(configuration.institution, g.staff.email, "exported_mailboxes", search)
    db.session.commit()
    response = Response(provisioning.export_csv(configuration, search), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="mailboxes.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/configurations/<int:configuration_id>/mailboxes/remove")
def remove_mailboxes(configuration_id: int):
    """End the synchronisation of the chosen mailboxes, as support: first a page that says
    what will happen and asks what to take out of them; only its confirmation removes."""
    configuration = _configuration(configuration_id)
    if not _mailboxes_open(configuration):
        abort(404)
    form = RemoveMailboxesForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _configuration_page(
            configuration, refusal=_("Choose the mailboxes from the list."), status=400
        )
    chosen = provisioning.removable(configuration, form.chosen())
    if not chosen:
        return _configuration_page(
            configuration, refusal=_("Choose at least one mailbox to remove."), status=400
        )
    if form.confirmed.data != "yes":
        return render_template(
            "support/remove_mailboxes.html",
            form=form,
            chosen=chosen,
            configuration=configuration,
            institution=configuration.institution,
        )
    done = provisioning.remove(configuration, chosen, form.remove.data == "calendar", g.staff.email)
    for message, category in done.messages():
        flash(message, category)
    return redirect(
        url_for("support.configuration", configuration_id=configuration.id, _anchor="mailboxes"),
        303,
    )


@bp.post("/configurations/<int:configuration_id>/held-removals")
def decide_held_removals(configuration_id: int):
    """Confirm or cancel the removals a pass of group following held, as support."""
    configuration = _configuration(configuration_id)
    form = HeldRemovalsForm()
    if not form.validate_on_submit():
        abort(400)
    held_pass = groups.find(configuration, form.pass_id.data)
    if held_pass is None:
        abort(404)
    flash(*groups.decide(held_pass, form.decision.data, g.staff.email))
    return redirect(
        url_for("support.configuration", configuration_id=configuration_id, _anchor="following"),
        303,
    )


@bp.post("/configurations/<int:configuration_id>/feed")
def feed(configuration_id: int):
    """Set the institution's timetable feed address."""
    configuration = _configuration(configuration_id)
    form = FeedForm()
    if form.validate_on_submit():
        configuration.feed_url_template = form.feed_url_template.data
        record(configuration.institution, g.staff.email, "feed_set", form.feed_url_template.data)
        db.session.commit()
        flash(_("The timetable feed address was saved."), "success")
    else:
        for errors in form.errors.values():
            flash(str(errors[0]), "error")  # a lazy text cannot be stored in the session
    return redirect(url_for("support.configuration", configuration_id=configuration.id))


@bp.route("/institutions", methods=["GET", "POST"])
def institutions():
    """Institutions with their invitations; a new institution and its first link."""
    form = InstitutionForm()
    if form.validate_on_submit():
        institution = invitations.create_institution(
            form.name.data, form.hosting.data, form.contact_email.data, g.staff.email
        )
        link = invitations.issue_invitation(institution, g.staff.email)
        db.session.commit()
        session["new_link"] = {"institution_id": institution.id, "url": link}
        return redirect(url_for("support.institutions"))
    search = search_argument(request.args)
    return render_template(
        "support/institutions.html",
        form=form,
        institutions=review.institutions(search, page_argument(request.args)),
        search=search,
        new_link=session.pop("new_link", None),
        now=utcnow(),
    ), 400 if form.errors else 200


@bp.route("/institutions/<int:institution_id>", methods=["GET", "POST"])
def institution_settings(institution_id: int):
    """What the institution's connect pages show its users: time zone, IT service desk,
    and whether users are e-mailed when they need to connect again."""
    institution = db.session.get(Institution, institution_id) or abort(404)
    form = InstitutionSettingsForm(
        obj=institution, colours=colours.as_text(institution.category_colours)
    )
    if form.validate_on_submit():
        institution.time_zone = form.time_zone.data or None
        institution.service_desk = form.service_desk.data or None
        institution.reconnect_email = form.reconnect_email.data
        institution.category_colours = form.colour_mapping or None
        mapping = colours.as_text(institution.category_colours).replace("\n", "; ")
        record(
            institution,
            g.staff.email,
            "institution_settings",
            f"time zone {institution.time_zone or 'from the browser'}, service desk "
            f"{institution.service_desk or 'none'}, reconnect e-mail "
            f"{'on' if institution.reconnect_email else 'off'}, category colours "
            f"{mapping or 'the default'}",
        )
        db.session.commit()
        flash(_("The settings of %(name)s were saved.", name=institution.name), "success")
        return redirect(url_for("support.institutions"))
    return render_template(
        "support/institution.html",
        form=form,
        institution=institution,
        default_colours=colours.defaults_by_colour(),
        colour_names=colours.COLOUR_NAMES,
    ), 400 if form.errors else 200


@bp.post("/institutions/<int:institution_id>/invitations")
def reissue(institution_id: int):
    """A new invitation link for the institution; the older ones stop working."""
    institution = db.session.get(Institution, institution_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not _confirmed():
        return redirect(url_for("support.confirm_reissue", institution_id=institution.id), 303)
    link = invitations.issue_invitation(institution, g.staff.email)
    db.session.commit()
    session["new_link"] = {"institution_id": institution.id, "url": link}
    return redirect(url_for("support.institutions"))


@bp.post("/invitations/<int:invitation_id>/revoke")
def revoke(invitation_id: int):
    """Stop an invitation link from opening the wizard."""
    invitation = db.session.get(Invitation, invitation_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not _confirmed():
        return redirect(url_for("support.confirm_revoke", invitation_id=invitation.id), 303)
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        record(
            invitation.institution, g.staff.email, "invitation_revoked", f"link #{invitation.id}"
        )
        db.session.commit()
        flash(
            _("The link for %(name)s no longer works.", name=invitation.institution.name), "success"
        )
    return redirect(url_for("support.institutions"))


@bp.route("/institutions/<int:institution_id>/api-keys", methods=["GET", "POST"])
def api_keys_page(institution_id: int):
    """The institution's keys for the provisioning API: make one (shown once), revoke."""
    institution = db.session.get(Institution, institution_id) or abort(404)
    form = ApiKeyForm()
    if form.validate_on_submit():
        row, key = api_keys.create(institution, form.name.data, g.staff.email)
        db.session.commit()
        session["new_api_key"] = {"id": row.id, "key": key}
        return redirect(url_for("support.api_keys_page", institution_id=institution.id))
    return render_template(
        "support/api_keys.html",
        institution=institution,
        configuration=institution.configuration,
        keys=api_keys.of(institution),
        form=form,
        new_key=session.pop("new_api_key", None),
    ), 400 if form.errors else 200


@bp.post("/api-keys/<int:key_id>/revoke")
def revoke_api_key(key_id: int):
    """Stop an API key from working, at once."""
    row = db.session.get(ApiKey, key_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if api_keys.revoke(row, g.staff.email):
        db.session.commit()
        flash(_("The key %(name)s no longer works.", name=row.name), "success")
    return redirect(url_for("support.api_keys_page", institution_id=row.institution_id))


@bp.get("/certificates")
def certificates():
    """The vendor certificate, its expiry, and the progress of a rotation."""
    return render_template(
        "support/certificates.html",
        current=Certificate.current_vendor(),
        upcoming=Certificate.upcoming_vendor(),
        progress=rotation.progress(page_argument(request.args)),
        warning_days=EXPIRY_WARNING_DAYS * 2,
    )


@bp.post("/certificates/rotation/<any(start, check, finish):action>")
def rotate(action: str):
    """Start a rotation (once confirmed), check every institution again, or finish it."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if action == "start" and not _confirmed():
        return redirect(url_for("support.confirm_rotation"), 303)
    try:
        if action == "start":
            new = rotation.start(g.staff.email)
            flash(
                _(
                    "Rotation started with %(thumbprint)s; administrators were told.",
                    thumbprint=new.sha1_thumbprint,
                ),
                "success",
            )
        elif action == "check":
            switched, waiting = rotation.check_all(g.staff.email)
            flash(
                _(
                    "Checked: %(switched)s switched to the new certificate, %(waiting)s not yet.",
                    switched=switched,
                    waiting=waiting,
                ),
                "info",
            )
        else:
            new = rotation.finish(g.staff.email)
            flash(
                _(
                    "%(thumbprint)s is now the current vendor certificate.",
                    thumbprint=new.sha1_thumbprint,
                ),
                "success",
            )
    except rotation.RotationError as error:
        flash(str(error), "error")
    return redirect(url_for("support.certificates"))


@bp.get("/outbox")
def outbox():
    """Messages to administrators: sent, failed, or kept here without SMTP."""
    messages = paginate(
        select(Notification).order_by(Notification.id.desc()), page_argument(request.args)
    )
    return render_template(
        "support/outbox.html", messages=messages, smtp=bool(current_app.config.get("SMTP_URL"))
    )


@bp.get("/export.<any(csv, json):fmt>")
def export(fmt: str):
    """All configurations as CSV or JSON, without secrets."""
    record(None, g.staff.email, "exported_configurations", fmt)
    db.session.commit()
    body, mimetype = (
        (review.export_csv(), "text/csv")
        if fmt == "csv"
        else (review.export_json(), "application/json")
    )
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="configurations.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# Confirmation steps. Approve, Revoke, New link and Start a rotation each open a page that
# says what will happen (GOV.UK's pattern, without JavaScript); its button posts the action
# with ``confirmed``. A post without it changes nothing and leads to this page. Each page
# has an address of its own (``.../confirm``): a GET and a POST rule on one address with
# an ``<int:>`` answer 405 instead of 404 for an ID out of the database's range.


def _confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


@bp.get("/configurations/<int:configuration_id>/approve/confirm")
def confirm_approve(configuration_id: int):
    """Ask before approving; say what is missing instead when the configuration is not
    complete (409: approving it would be refused)."""
    configuration = _configuration(configuration_id)
    institution = configuration.institution
    back = url_for("support.configuration", configuration_id=configuration.id)
    refusal = None
    if configuration.status != Status.SUBMITTED:
        refusal = _("Only a submitted configuration can be approved.")
    elif missing := [t for t in review.readiness(configuration) if not t.done]:
        refusal = str(review.IncompleteError(missing))
    return render_template(
        "support/confirm.html",
        caption=institution.name,
        heading=_("Approve the configuration of %(name)s?", name=institution.name),
        paragraphs=[
            _(
                "The connection becomes active: timetables can be synchronised to Outlook, "
                "and the administrator (%(email)s) gets an e-mail saying so.",
                email=institution.contact_email,
            ),
        ],
        action=url_for("support.approve", configuration_id=configuration.id),
        button=_("Yes, approve"),
        back=back,
        refusal=refusal,
    ), 409 if refusal else 200


@bp.get("/institutions/<int:institution_id>/invitations/confirm")
def confirm_reissue(institution_id: int):
    """Ask before making a new invitation link, which stops the older ones."""
    institution = db.session.get(Institution, institution_id) or abort(404)
    now = utcnow()
    valid = [i for i in institution.invitations if not i.revoked_at and i.expires_at > now]
    paragraphs = [_("The new link is shown once, on the next page, for you to send on.")]
    if valid:
        paragraphs.insert(
            0,
            ngettext(
                "The link that still works (%(links)s) stops working.",
                "The %(num)d links that still work (%(links)s) stop working.",
                len(valid),
                links=", ".join(f"#{i.id}" for i in valid),
            ),
        )
    return render_template(
        "support/confirm.html",
        caption=institution.name,
        heading=_("Make a new invitation link for %(name)s?", name=institution.name),
        paragraphs=paragraphs,
        action=url_for("support.reissue", institution_id=institution.id),
        button=_("Yes, make a new link"),
        back=url_for("support.institutions"),
    )


@bp.get("/invitations/<int:invitation_id>/revoke/confirm")
def confirm_revoke(invitation_id: int):
    """Ask before revoking an invitation link."""
    invitation = db.session.get(Invitation, invitation_id) or abort(404)
    institution = invitation.institution
    if invitation.revoked_at is not None:
        flash(_("Link #%(number)s was revoked before.", number=invitation.id), "info")
        return redirect(url_for("support.institutions"))
    return render_template(
        "support/confirm.html",
        caption=institution.name,
        heading=_("Revoke invitation link #%(number)s?", number=invitation.id),
        paragraphs=[
            _(
                "The administrator of %(name)s can no longer open the setup wizard with it. "
                "Nothing else changes; you can make a new link at any time.",
                name=institution.name,
            )
        ],
        action=url_for("support.revoke", invitation_id=invitation.id),
        button=_("Yes, revoke the link"),
        warning=True,
        back=url_for("support.institutions"),
    )


@bp.get("/certificates/rotation/start/confirm")
def confirm_rotation():
    """Ask before starting a rotation, naming the institutions that will be asked."""
    if Certificate.upcoming_vendor() is not None:
        flash(_("A rotation is already under way."), "info")
        return redirect(url_for("support.certificates"))
    recipients = rotation.participants()
    return render_template(
        "support/confirm.html",
        caption=_("Vendor certificate"),
        heading=_("Start a rotation?"),
        paragraphs=[
            _(
                "The portal makes the next vendor certificate and e-mails the administrator "
                "of each institution below a link to add it to their app registration."
            ),
            ngettext(
                "%(num)d institution is asked: managed, with a submitted or approved "
                "configuration on the vendor certificate.",
                "%(num)d institutions are asked: managed, with a submitted or approved "
                "configuration on the vendor certificate.",
                len(recipients),
            ),
        ],
        recipients=recipients,
        action=url_for("support.rotate", action="start"),
        button=_("Yes, start the rotation"),
        back=url_for("support.certificates"),
    )
