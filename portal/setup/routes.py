"""The wizard's pages. Each step saves the draft and moves on; the stepper can go back."""

from dataclasses import dataclass

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
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import (
    certificates,
    consent,
    export,
    groups,
    invitations,
    provisioning,
    security,
    verification,
)
from .. import review as reviews
from .. import rotation as rotations
from ..consent import ADMIN
from ..extensions import db
from ..forms import ConfirmForm, HeldRemovalsForm, RemoveMailboxesForm
from ..i18n import lazy_gettext as _l
from ..i18n import return_after_switching
from ..microsoft.clouds import cloud
from ..microsoft.errors import MicrosoftError, advice_for
from ..models import Certificate, CheckOutcome, Method, Status, record, utcnow
from ..paging import page_argument, search_argument
from ..urls import external, redirect_uri
from . import bp, return_routes, scripts
from .forms import (
    ApplicationVerifyForm,
    GenerateCertificateForm,
    GroupFollowingForm,
    MailboxesForm,
    MethodForm,
    PfxForm,
    RegisterForm,
    TenantForm,
)


@dataclass(frozen=True)
class Step:
    """A step of the wizard: its number, endpoint and title."""

    number: int
    endpoint: str
    title: str


STEPS = (
    Step(1, "setup.method", _l("Method")),
    Step(2, "setup.certificate", _l("Certificate")),
    Step(3, "setup.register", _l("Register the app")),
    Step(4, "setup.tenant", _l("Tenant and application")),
    Step(5, "setup.verify", _l("Verify")),
    Step(6, "setup.review", _l("Review and finish")),
)
STEP_BY_NAME = {s.endpoint.split(".")[1]: s for s in STEPS}
LOCKED = (Status.SUBMITTED, Status.APPROVED)


@bp.route("/i/<token>", methods=["GET", "POST"])
def open_invitation(token: str):
    """Open the wizard from an invitation link, once the administrator confirms.

    Opening the link only asks: mail scanners and link previews open links too, and the
    browser may hold a support engineer's or another institution's session. Only the
    confirmation's POST, carrying this session's CSRF token, replaces the session.
    """
    try:
        invitation = invitations.resolve(token)
    except invitations.InvitationError as error:
        return return_routes.invalid_invitation_page(error, token)
    # Links in e-mails may name one page of the wizard; nothing else is followed.
    to_rotation = request.args.get("to") == "rotation"
    form = ConfirmForm()
    if form.validate_on_submit():
        session.clear()
        session["invitation_id"] = invitation.id
        current_app.session_interface.regenerate(session)  # a new ID for a new privilege
        invitation.last_used_at = utcnow()
        db.session.commit()
        return redirect(url_for("setup.rotation" if to_rotation else "setup.resume"))
    if request.method == "POST":
        abort(400)
    page = render_template(
        "setup/invitation.html",
        form=form,
        institution=invitation.institution,
        action=url_for(
            "setup.open_invitation", token=token, to="rotation" if to_rotation else None
        ),
        staff=session.get("staff_id") is not None,
        other=invitations.other_institution(session.get("invitation_id"), invitation),
    )
    # The page's address holds the key: kept out of caches and of the Referer header.
    return page, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _invalid_invitation(error: invitations.InvitationError):
    return return_routes.invalid_invitation_page(error)


@bp.before_request
def load_invitation():
    """Every wizard page belongs to the invitation remembered in this browser's session."""
    if request.endpoint in return_routes.OPEN_ENDPOINTS:
        return None
    try:
        invitation = invitations.current(session.get("invitation_id"))
    except invitations.InvitationError as error:
        return _invalid_invitation(error)
    g.institution = invitation.institution
    g.configuration = invitation.institution.configuration
    if request.method != "GET":
        return_after_switching(url_for("setup.resume"))
    return None


@bp.context_processor
def wizard_context():
    """The stepper and the institution for every wizard template."""
    configuration = getattr(g, "configuration", None)
    return {
        "steps": STEPS,
        "institution": getattr(g, "institution", None),
        "configuration": configuration,
        "locked": configuration is not None and configuration.status in LOCKED,
    }


def _reached(number: int) -> None:
    configuration = g.configuration
    configuration.step_reached = max(configuration.step_reached, number)


def _guard(name: str):
    """Send the browser to the furthest step it may open, if it asked for a later one."""
    configuration = g.configuration
    step = STEP_BY_NAME[name]
    if configuration.status in LOCKED and name != "review":
        return redirect(url_for("setup.review"))
    if step.number > configuration.step_reached:
        return redirect(url_for(STEPS[configuration.step_reached - 1].endpoint))
    return None


@bp.get("/")
def resume():
    """Continue where the administrator left off; a wizard not begun opens at its start page."""
    configuration = g.configuration
    if _not_begun(configuration):
        return redirect(url_for("setup.start"))
    if configuration.status in LOCKED:
        return redirect(url_for("setup.review"))
    if configuration.status == Status.CHANGES_REQUESTED and configuration.review_step:
        return redirect(url_for(STEP_BY_NAME[configuration.review_step].endpoint))
    return redirect(url_for(STEPS[configuration.step_reached - 1].endpoint))


def _not_begun(configuration) -> bool:
    return (
        configuration.status == Status.DRAFT
        and configuration.method is None
        and configuration.step_reached == 1
    )


@bp.get("/start")
def start():
    """Before step 1: who should do this, how long it takes, what to have at hand."""
    return render_template("setup/start.html", begun=not _not_begun(g.configuration))


@bp.route("/method", methods=["GET", "POST"])
def method():
    """Step 1: application or delegated permissions (with all calendars or one group), and
    the Microsoft cloud."""
    if response := _guard("method"):
        return response
    configuration = g.configuration
    form = MethodForm(obj=configuration)
    if form.validate_on_submit():
        with verification.watch(configuration):
            form.populate_obj(configuration)
            if configuration.method != Method.APPLICATION:
                configuration.mailbox_scope = None
        if configuration.limited_to_group and not configuration.security_group_email:
            # the group's address is asked in step 4: nothing after it until it is entered
            configuration.step_reached = min(configuration.step_reached, 4)
        _reached(2)
        db.session.commit()
        return redirect(url_for("setup.certificate"))
    return render_template("setup/method.html", form=form), 400 if form.errors else 200


@bp.route("/certificate", methods=["GET", "POST"])
def certificate():
    """Step 2: the vendor's certificate, or the institution's own generated one."""
    if response := _guard("certificate"):
        return response
    configuration, institution = g.configuration, g.institution
    if institution.managed and configuration.certificate is None:
        configuration.certificate = Certificate.current_vendor()
        db.session.commit()
    form = ConfirmForm()
    if form.validate_on_submit():
        if configuration.certificate is None:
            flash(_("Generate the certificate first."), "error")
            return redirect(url_for("setup.certificate"))
        _reached(3)
        db.session.commit()
        return redirect(url_for("setup.register"))
    on_premises = not institution.managed  # only an institution's own certificate has these
    return render_template(
        "setup/certificate.html",
        form=form,
        generate_form=GenerateCertificateForm() if on_premises else None,
        pfx_form=PfxForm() if certificates.key_offered(configuration) else None,
        certificate=configuration.certificate,
    )


@bp.post("/certificate/generate")
def generate_certificate():
    """On-premises: make (or replace) the institution's key pair and certificate."""
    if response := _guard("certificate"):
        return response
    if g.institution.managed:
        abort(404)
    form = GenerateCertificateForm()
    if not form.validate_on_submit():
        flash(_("Choose how long the certificate is valid."), "error")
        return redirect(url_for("setup.certificate"))
    replacing = g.configuration.certificate is not None
    with verification.watch(g.configuration):
        certificates.generate_for(g.institution, int(form.validity.data), ADMIN)
    db.session.commit()
    flash(
        _(
            "A new certificate was made. Upload it to the app registration again and remove "
            "the old one."
        )
        if replacing
        else _("The certificate was made. Download it below."),
        "success",
    )
    return redirect(url_for("setup.certificate"))


@bp.get("/certificate.<any(cer, pem):fmt>")
def download_certificate(fmt: str):
    """The public certificate as .cer (DER, for Entra) or .pem."""
    certificate = g.configuration.certificate
    if certificate is None:
        abort(404)
    name = f"mytimetable-{g.institution.slug}"
    if fmt == "cer":
        body, mimetype = security.der_certificate(certificate.public_pem), "application/pkix-cert"
    else:
        body, mimetype = certificate.public_pem, "application/x-pem-file"
    return _download(body, mimetype, f"{name}.{fmt}")


@bp.post("/certificate/pfx")
def download_pfx():
    """On-premises: the private key and certificate as a password-protected .pfx."""
    certificate = g.configuration.certificate
    if g.institution.managed or certificate is None:
        abort(404)
    offered = certificates.key_offered(g.configuration)
    form = PfxForm()
    if not offered or not form.validate_on_submit():
        return render_template(
            "setup/certificate.html",
            form=ConfirmForm(),
            generate_form=GenerateCertificateForm(),
            pfx_form=form if offered else None,
            certificate=certificate,
        ), 400 if offered else 410
    bundle = security.pkcs12_bundle(
        certificate.public_pem,
        certificates.private_key_pem(certificate),
        form.password.data,
        f"MyTimetable {g.institution.name}",
    )
    record(g.institution, ADMIN, "private_key_downloaded", certificate.sha1_thumbprint)
    db.session.commit()
    return _download(bundle, "application/x-pkcs12", certificates.key_file_name(g.institution))


def _download(body, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Step 3: the app registration in Microsoft Entra ID, step by step."""
    if response := _guard("register"):
        return response
    configuration = g.configuration
    form = RegisterForm(obj=configuration)
    if not offers_following(configuration):
        del form.follow_group
    if form.validate_on_submit():
        with verification.watch(configuration):  # following adds a check
            form.populate_obj(configuration)
        _reached(4)
        db.session.commit()
        return redirect(url_for("setup.tenant"))
    return render_template(
        "setup/register.html",
        form=form,
        cloud=cloud(configuration.cloud),
        redirect_uri=redirect_uri(),
        scripts=scripts.for_configuration(configuration, cloud(configuration.cloud)),
        admin_consent=admin_consent_offered(configuration),
    )


@bp.get("/scripts/<any(rbac, 'access-policy', 'consent-policy'):name>.ps1")
def download_script(name: str):
    """The PowerShell for a security-group limit or a custom app consent policy, with the
    values filled in."""
    configuration = g.configuration
    body = scripts.SCRIPTS[name](configuration, cloud(configuration.cloud))
    return _download(body, "text/plain", f"mytimetable-{name}.ps1")


@bp.route("/tenant", methods=["GET", "POST"])
def tenant():
    """Step 4: Tenant ID, Application (client) ID and, if chosen in step 1, the group."""
    if response := _guard("tenant"):
        return response
    configuration = g.configuration

    form = TenantForm(obj=configuration)
    if not configuration.limited_to_group:
        del form.security_group_email
    if form.validate_on_submit():
        before = (configuration.tenant_id, configuration.client_id)
        with verification.watch(configuration):
            form.populate_obj(configuration)
            configuration.client_id = configuration.client_id.lower()
        if before != (configuration.tenant_id, configuration.client_id):
            configuration.tenant_guid = None
            configuration.service_principal_id = None
        _reached(5)
        db.session.commit()
        return redirect(url_for("setup.verify"))
    return render_template("setup/tenant.html", form=form), 400 if form.errors else 200


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    """Step 5: live checks against Microsoft, shown as a chain."""
    if response := _guard("verify"):
        return response
    configuration = g.configuration
    form = ApplicationVerifyForm(obj=configuration, group=configuration.group)
    status = 200
    if configuration.method == Method.APPLICATION and request.method == "POST":
        if form.validate_on_submit():
            form.populate_obj(configuration)
            verification.run_application_checks(configuration, ADMIN)
            return redirect(url_for("setup.verify"))
        status = 400
    elif request.method == "POST":
        abort(405)
    if configuration.verified and configuration.step_reached < 6:
        _reached(6)
        db.session.commit()
    chain, recheck = _chain(configuration)
    return render_template(
        "setup/verify.html",
        form=form,
        confirm=ConfirmForm(),
        chain=chain,
        recheck=recheck,
        cloud=cloud(configuration.cloud),
        scripts=scripts.for_configuration(configuration, cloud(configuration.cloud)),
        admin_consent=admin_consent_offered(configuration),
    ), status


def _chain(configuration):
    """The links shown, one by one, with the links not reached, and what to say of a
    delegated run that stopped before the sign-in (``verification.shown_run``)."""
    if not configuration.method:
        return [], None
    run, recheck = verification.shown_run(configuration)
    stale = verification.checked_before_change(configuration, run)
    return _linked(verification.chain(configuration), run, advice_for, stale), recheck


def _rotation_chain(configuration):
    """The new certificate's last check: the links it ran, with the rotation's own advice,
    which points to no step of the wizard."""
    if not configuration.method:
        return []
    run = configuration.latest_run("rotation")
    ran = {v.kind for v in run}
    links = [
        link
        for link in verification.chain(configuration)
        if link in verification.FIRST_LINKS or link.kind in ran
    ]
    return _linked(links, run, rotations.advice_for, stale=False, steps=False)


def _linked(links, run, advise, stale: bool, steps: bool = True) -> list[dict]:
    """Each link with its result in ``run`` (if it got that far), ``advise``'s advice for a
    failure and, with ``steps``, the wizard step that advice points to."""
    done = {v.kind: v for v in run}
    items = []
    for link in links:
        result = done.get(link.kind)
        advice = None
        if result and result.outcome == CheckOutcome.FAILED:
            advice = advise(result.error_code)
        step = STEP_BY_NAME.get(advice.step) if steps and advice and advice.step else None
        items.append(
            {"link": link, "result": result, "advice": advice, "step": step, "stale": stale}
        )
    return items


@bp.post("/verify/sign-in")
def verify_sign_in():
    """Delegated: check tenant, app and certificate, then sign in at Microsoft."""
    if response := _guard("verify"):
        return response
    configuration = g.configuration
    if configuration.method != Method.DELEGATED or not ConfirmForm().validate_on_submit():
        abort(400)
    run_id = verification.begin_delegated_checks(configuration, ADMIN)
    if run_id is None:
        return redirect(url_for("setup.verify"))
    try:
        auth_uri = consent.start_sign_in(
            configuration, consent.Purpose.VERIFY, prompt="select_account", run_id=run_id
        )
    except MicrosoftError as error:
        flash(f"{error.advice.cause} {error.advice.action}", "error")
        return redirect(url_for("setup.verify"))
    return redirect(auth_uri)


@bp.post("/verify/admin-consent")
def admin_consent():
    """Grant consent for the whole organisation at Microsoft's admin consent endpoint; on
    the way back the checks run again (``consent.answer``)."""
    if response := _guard("verify"):
        return response
    configuration = g.configuration
    if not admin_consent_offered(configuration) or not ConfirmForm().validate_on_submit():
        abort(400)
    return redirect(consent.start_admin_consent(configuration, consent.Purpose.SETUP))


def offers_following(configuration) -> bool:
    """Whether MyTimetable may follow the configuration's group (the portal synchronises
    managed-hosting institutions' mailboxes itself)."""
    return configuration.institution.managed and configuration.limited_to_group


def admin_consent_offered(configuration) -> bool:
    """Whether the wizard offers admin consent through Microsoft's endpoint: for delegated
    permissions, and for application permissions unless RBAC for Applications limits them
    to a group (a tenant-wide grant would make that scope mean nothing)."""
    if not (configuration.tenant_id and configuration.client_id):
        return False
    if configuration.method == Method.DELEGATED:
        return True
    return configuration.method == Method.APPLICATION and not (
        configuration.limited_to_group and configuration.group_scope_method == "rbac"
    )


@bp.route("/review", methods=["GET"])
def review():
    """Step 6: everything on one page, with an edit link per step."""
    if response := _guard("review"):
        return response
    configuration = g.configuration
    chain, recheck = _chain(configuration)
    return render_template(
        "setup/review.html",
        form=ConfirmForm(),
        chain=chain,
        recheck=recheck,
        cloud=cloud(configuration.cloud),
        redirect_uri=redirect_uri(),
        key_file=certificates.key_file_name(g.institution),
        rotation=rotations.needs_action(configuration) if g.institution.managed else None,
        connect_url=external("connect.start", slug=g.institution.slug),
    )


@bp.route("/rotation", methods=["GET", "POST"])
def rotation():
    """Managed hosting: add MyTimetable's new certificate beside the old one, then check it."""
    configuration = g.configuration
    new = rotations.needs_action(configuration) if g.institution.managed else None
    switched = configuration.certificate is not None and configuration.certificate.upcoming
    if new is None and not switched:
        abort(404)
    if request.method == "POST":
        if not ConfirmForm().validate_on_submit():
            abort(400)
        if rotations.check(configuration, ADMIN):
            flash(_("Microsoft accepts the new certificate: MyTimetable now uses it."), "success")
        else:
            flash(_("Microsoft does not accept the new certificate yet: see below."), "error")
        return redirect(url_for("setup.rotation"))
    return render_template(
        "setup/rotation.html",
        form=ConfirmForm(),
        new=new or configuration.certificate,
        old=None if switched else configuration.certificate,
        switched=switched,
        chain=_rotation_chain(configuration),
        cloud=cloud(configuration.cloud),
    )


@bp.get("/rotation.<any(cer, pem):fmt>")
def download_new_certificate(fmt: str):
    """The new vendor certificate's public part."""
    new = rotations.needs_action(g.configuration) if g.institution.managed else None
    if new is None:
        abort(404)
    if fmt == "cer":
        return _download(
            security.der_certificate(new.public_pem), "application/pkix-cert", "mytimetable-new.cer"
        )
    return _download(new.public_pem, "application/x-pem-file", "mytimetable-new.pem")


def _provisioning_open() -> bool:
    configuration = g.configuration
    return (
        g.institution.managed
        and configuration.status == Status.APPROVED
        and configuration.method == Method.APPLICATION
    )


@bp.route("/mailboxes", methods=["GET", "POST"])
def mailboxes():
    """Application permissions, once approved: add the mailboxes MyTimetable syncs, find
    them by address, page through them and choose some to remove."""
    if not _provisioning_open():
        abort(404)
    configuration = g.configuration
    form = MailboxesForm()
    outcome, unreadable, status = None, [], 200
    if form.validate_on_submit():
        text = form.addresses.data or ""
        if form.upload.data:
            text += "\n" + form.upload.data.read().decode("utf-8-sig", errors="replace")
        upns, unreadable = provisioning.parse_list(text)
        outcome, status = _provision(configuration, upns)
    elif form.errors:
        status = 400
    return _mailboxes_page(configuration, form, outcome, unreadable), status


def _mailboxes_page(configuration, form, outcome=None, unreadable=(), following_form=None):
    search = search_argument(request.args)
    listing = provisioning.mailbox_page(configuration, search, page_argument(request.args))
    if following_form is None and configuration.group:
        following_form = GroupFollowingForm(formdata=None, obj=configuration)
    return render_template(
        "setup/mailboxes.html",
        form=form,
        group_form=ConfirmForm(),
        remove_form=RemoveMailboxesForm(formdata=None),
        outcome=outcome,
        unreadable=unreadable,
        listing=listing,
        search=search,
        following_form=following_form,
        passes=groups.passes(configuration) if configuration.group else [],
        held_pass=groups.held(configuration) if configuration.group else None,
        follow_minutes=current_app.config["GROUP_FOLLOW_MINUTES"],
    )


@bp.post("/mailboxes/following")
def group_following():
    """Follow the security group (every member synchronised, leavers ended) or stop, and
    what a leaver's mailbox loses."""
    if not _provisioning_open() or not g.configuration.group:
        abort(404)
    configuration = g.configuration
    form = GroupFollowingForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        page = _mailboxes_page(configuration, MailboxesForm(formdata=None), following_form=form)
        return page, 400
    groups.set_following(configuration, form.follow_group.data, form.leaver_removal.data, ADMIN)
    if form.follow_group.data:
        flash(
            _(
                "Saved: MyTimetable follows %(group)s. The first pass runs within a few "
                "minutes; its outcome shows below.",
                group=configuration.group,
            ),
            "success",
        )
    else:
        flash(_("Saved: MyTimetable no longer follows the group."), "success")
    return redirect(url_for("setup.mailboxes", _anchor="following"), 303)


@bp.post("/mailboxes/held-removals")
def decide_held_removals():
    """Confirm or cancel the removals a pass of group following held."""
    if not _provisioning_open():
        abort(404)
    form = HeldRemovalsForm()
    if not form.validate_on_submit():
        abort(400)
    held_pass = groups.find(g.configuration, form.pass_id.data)
    if held_pass is None:
        abort(404)
    flash(*groups.decide(held_pass, form.decision.data, ADMIN))
    return redirect(url_for("setup.mailboxes", _anchor="following"), 303)


@bp.post("/mailboxes/group")
def mailboxes_from_group():
    """Add every member of the configuration's security group."""
    if not _provisioning_open() or not g.configuration.group:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    configuration = g.configuration
    try:
        upns = provisioning.group_upns(configuration)
    except MicrosoftError as error:
        flash(
            f"{error.advice.cause} {error.advice.action} ({error.display_code or error.code})",
            "error",
        )
        return redirect(url_for("setup.mailboxes"))
    outcome, status = _provision(configuration, upns)
    return _mailboxes_page(configuration, MailboxesForm(formdata=None), outcome), status


@bp.get("/mailboxes.csv")
def export_mailboxes():
    """The mailboxes (those matching the search) as CSV, for a spreadsheet."""
    if not _provisioning_open():
        abort(404)
    return _download(
        provisioning.export_csv(g.configuration, search_argument(request.args)),
        "text/csv",
        "mailboxes.csv",
    )


@bp.post("/mailboxes/remove")
def remove_mailboxes():
    """End the synchronisation of the chosen mailboxes: first a page that says what will
    happen and asks what to take out of them; only its confirmation removes anything."""
    if not _provisioning_open():
        abort(404)
    configuration = g.configuration
    form = RemoveMailboxesForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash(_("Choose the mailboxes from the list."), "error")
        return _mailboxes_page(configuration, MailboxesForm(formdata=None)), 400
    chosen = provisioning.removable(configuration, form.chosen())
    if not chosen:
        flash(_("Choose at least one mailbox to remove."), "error")
        return _mailboxes_page(configuration, MailboxesForm(formdata=None)), 400
    if form.confirmed.data != "yes":
        return render_template("setup/remove_mailboxes.html", form=form, chosen=chosen)
    done = provisioning.remove(configuration, chosen, form.remove.data == "calendar", ADMIN)
    for message, category in done.messages():
        flash(message, category)
    return redirect(url_for("setup.mailboxes"), 303)


def _provision(configuration, upns):
    try:
        return provisioning.provision(configuration, upns, ADMIN), 200
    except MicrosoftError as error:
        flash(f"{error.advice.cause} {error.advice.action}", "error")
        return None, 502 if error.code == "unreachable" else 400


@bp.post("/submit")
def submit():
    """Managed hosting: hand the verified configuration to MyTimetable support."""
    configuration = g.configuration
    if not g.institution.managed or configuration.status in LOCKED:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not configuration.verified:
        flash(_("Verify the connection first: every check must pass."), "error")
        return redirect(url_for("setup.verify"))
    reviews.submitted(configuration, ADMIN, language=str(get_locale()))
    return redirect(url_for("setup.review"))


@bp.get("/export")
def export_configuration():
    """On-premises: download MyTimetable's configuration file."""
    configuration = g.configuration
    if g.institution.managed:
        abort(404)
    if not configuration.verified or configuration.step_reached < 6:
        flash(_("Verify the connection first: every check must pass."), "error")
        return redirect(url_for("setup.verify"))
    body = export.mytimetable_properties(configuration)
    configuration.status = Status.EXPORTED
    configuration.exported_at = utcnow()
    record(g.institution, ADMIN, "exported", export.file_name(configuration))
    db.session.commit()
    return _download(body, "text/plain", export.file_name(configuration))
