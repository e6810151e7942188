"""Live verification of a configuration against Microsoft, as a chain of links.

The chain stops at the first broken link, so the administrator sees exactly where it
breaks; every link checked is stored with its evidence. The wizard and the support
console both run the checks through this module.
"""

import hashlib
import json
import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask_babel import force_locale, gettext

from . import staff
from .extensions import db
from .i18n import lazy_gettext as _l
from .microsoft import graph, identity
from .microsoft.clouds import cloud
from .microsoft.errors import MicrosoftError
from .models import CheckOutcome, Configuration, Method, Verification, record, utcnow

log = logging.getLogger(__name__)

REQUIRED_PERMISSION = "Calendars.ReadWrite"
CERTIFICATE_CODES = {"700027", "7000274", "7000215", "7000222", "7000218"}
# Entra knows the app and its certificate but not the resource asked for (Graph in another
# cloud) or the app's registration does not ask for Graph: a permission failure.
RESOURCE_CODES = {"500011", "650057"}


@dataclass(frozen=True)
class Link:
    """One link of the chain: its key and the words shown for it."""

    kind: str
    label: str


TENANT = Link("tenant_found", _l("Tenant found"))
APPLICATION = Link("application_found", _l("Application found in the tenant"))
CERTIFICATE = Link("certificate_accepted", _l("Certificate accepted"))
SIGNED_IN = Link("signed_in", _l("Administrator signed in and consented"))
PERMISSION = Link("permission_granted", _l("Calendars.ReadWrite permission granted"))
MAILBOX = Link("mailbox_reachable", _l("Mailbox reachable"))
SCOPE = Link("scope_enforced", _l("Access limited to the security group"))
GROUP = Link("group_readable", _l("The group's members can be read"))

# The links checked with the certificate alone, before anyone signs in: a new
# certificate's check stops after them, and so does support's re-check of a delegated
# configuration (only an administrator of the tenant can sign in for the rest).
FIRST_LINKS = (TENANT, APPLICATION, CERTIFICATE)
CHAINS = {
    Method.APPLICATION: (*FIRST_LINKS, PERMISSION, MAILBOX, SCOPE),
    Method.DELEGATED: (*FIRST_LINKS, SIGNED_IN, PERMISSION, MAILBOX),
}
LABELS = {link.kind: link.label for links in (*CHAINS.values(), [GROUP]) for link in links}
# The application permissions that let the app list a group's transitive members
# (group-list-transitivemembers.md, with GroupMember.Read.All the least privileged; the
# directory-wide ones, Directory.ReadWrite.All too, include it).
GROUP_PERMISSIONS = (
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)


def chain(configuration: Configuration) -> tuple[Link, ...]:
    """The links a configuration's verification checks: with group following, reading the
    group's members too."""
    links = CHAINS[Method(configuration.method)]
    if configuration.method == Method.APPLICATION and configuration.followed_group:
        links += (GROUP,)
    return links


def N_(message: str) -> str:
    """Marks a message for translation where it is only looked up later (by ``gettext``)."""
    return message


# The evidence of each link, as messages with their values named: stored with its key and
# values, it is shown in the page's language (``evidence_text``). The English text is kept
# too, for exports and for rows stored before.
EVIDENCE = {
    "tenant": N_("Tenant %(guid)s, issuer %(issuer)s"),
    "tenant_named": N_("%(entered)s is tenant %(guid)s, issuer %(issuer)s"),
    "application": N_("Application %(client_id)s is registered."),
    "resource_refused": N_("Not reached: Microsoft refused the resource asked for."),
    "certificate": N_(
        "Signed in with certificate %(thumbprint)s (SHA-1 thumbprint); app-only token issued."
    ),
    "rbac_scoped": N_(
        "No tenant-wide Calendars.ReadWrite grant in the token, as RBAC for Applications "
        "requires; the Exchange role assignment grants access for the group."
    ),
    "roles": N_("Token roles: %(roles)s."),
    "calendars": N_("Read the calendars of %(mailbox)s: %(names)s."),
    "no_calendars": N_("Read the calendars of %(mailbox)s: it has no calendars."),
    "no_group": N_("No security group: the app may reach every mailbox."),
    "outside_refused": N_("%(outside)s, outside %(group)s, was refused: %(code)s: %(message)s"),
    "group_members": N_("Read %(count)s members of %(group)s (application permission %(roles)s)."),
    "signed_in": N_("%(user)s signed in through the redirect URI and the consent prompt."),
    "scopes": N_("Delegated scopes granted: %(scopes)s."),
}


def evidence_text(link: Verification) -> str:
    """A link's evidence in the page's language; rows stored before evidence had a key
    show their English text."""
    values = link.evidence_params or {}
    if link.evidence_key in EVIDENCE and isinstance(values, dict):
        try:
            return gettext(EVIDENCE[link.evidence_key], **values)
        except (KeyError, ValueError, TypeError):
            pass
    return link.evidence


class _Run:
    """Records the links of one run; ``fail`` stops the chain."""

    def __init__(
        self,
        configuration: Configuration,
        run_id: str | None = None,
        purpose="configuration",
        actor: str | None = None,
    ):
        self.configuration = configuration
        self.run_id = run_id or str(uuid.uuid4())
        self.purpose = purpose
        self.actor = actor
        self.inputs = fingerprint(configuration)

    def passed(self, link: Link, evidence: str, **values) -> None:
        """The link holds; ``evidence`` is a key of ``EVIDENCE``, ``values`` its values."""
        self._add(link, CheckOutcome.PASSED, None, "", evidence, values)

    def skipped(self, link: Link, evidence: str, **values) -> None:
        self._add(link, CheckOutcome.SKIPPED, None, "", evidence, values)

    def failed(self, link: Link, error: MicrosoftError, code: str | None = None) -> None:
        self._add(link, CheckOutcome.FAILED, code or error.code, error.message, None, {})

    def _add(self, link, outcome, code, message, key, values):
        values = {name: str(value) for name, value in values.items()}
        evidence = EVIDENCE[key] % values if key else ""
        db.session.add(
            Verification(
                configuration=self.configuration,
                run_id=self.run_id,
                purpose=self.purpose,
                kind=link.kind,
                actor=self.actor,
                inputs=self.inputs,
                outcome=outcome,
                error_code=code[:60] if code else None,  # the column's length
                message=message[:2000],
                evidence=evidence[:2000],
                evidence_key=key,
                evidence_params=values or None,
            )
        )


def _app_only_links(run: _Run, configuration: Configuration, require_roles: bool, certificate=None):
    """Tenant, application and certificate links; return the token, or None if broken."""
    app = identity.registration(configuration, certificate)
    certificate = app.certificate
    try:
        tenant = identity.discover_tenant(app.cloud, app.tenant)
    except MicrosoftError as error:
        run.failed(TENANT, error)
        return None
    configuration.tenant_guid = tenant.guid
    entered = configuration.tenant_id
    if entered.lower() == tenant.guid:
        run.passed(TENANT, "tenant", guid=tenant.guid, issuer=tenant.issuer)
    else:
        run.passed(TENANT, "tenant_named", entered=entered, guid=tenant.guid, issuer=tenant.issuer)
    try:
        token = identity.client_credentials_token(app)
    except MicrosoftError as error:
        if error.code in CERTIFICATE_CODES:
            run.passed(APPLICATION, "application", client_id=configuration.client_id)
            run.failed(CERTIFICATE, error)
        elif error.code in RESOURCE_CODES:
            run.passed(APPLICATION, "application", client_id=configuration.client_id)
            run.skipped(CERTIFICATE, "resource_refused")
            run.failed(PERMISSION, error)
        else:
            run.failed(APPLICATION, error)
        return None
    run.passed(APPLICATION, "application", client_id=configuration.client_id)
    run.passed(CERTIFICATE, "certificate", thumbprint=certificate.sha1_thumbprint)
    configuration.service_principal_id = token.service_principal_id
    if require_roles and _rbac_scoped(configuration):
        if REQUIRED_PERMISSION in token.roles:
            run.failed(
                PERMISSION,
                MicrosoftError("rbac_tenant_wide", f"Token roles: {', '.join(token.roles)}."),
            )
            return None
        run.passed(PERMISSION, "rbac_scoped")
    elif require_roles:
        if REQUIRED_PERMISSION not in token.roles:
            granted = ", ".join(token.roles) or "none"
            run.failed(
                PERMISSION,
                MicrosoftError("no_roles", f"Application permissions in the token: {granted}."),
            )
            return None
        run.passed(PERMISSION, "roles", roles=", ".join(token.roles))
    return token


def _rbac_scoped(configuration: Configuration) -> bool:
    return bool(configuration.group) and configuration.group_scope_method == "rbac"


def run_application_checks(configuration: Configuration, actor: str) -> str:
    """Verify an application-permissions configuration end to end; return the run ID."""
    run = _Run(configuration, actor=actor)
    token = _app_only_links(run, configuration, require_roles=True)
    reached = token is not None and _mailbox_links(run, configuration, token.access_token)
    if reached and configuration.followed_group:
        _group_link(run, configuration, token)
    _finish(run, actor)
    return run.run_id


def _mailbox_links(run: _Run, configuration: Configuration, access_token: str) -> bool:
    """The mailbox and scope links; whether they hold."""
    where = cloud(configuration.cloud)
    group = configuration.group
    try:
        calendars = graph.list_calendars(where, access_token, configuration.test_mailbox)
    except MicrosoftError as error:
        policy = error.code == "ErrorAccessDenied" and group
        run.failed(MAILBOX, error, code="ErrorAccessDenied/policy" if policy else None)
        return False
    _calendars_read(run, configuration.test_mailbox, calendars)
    if not group:
        run.skipped(SCOPE, "no_group")
        return True
    try:
        graph.list_calendars(where, access_token, configuration.outside_mailbox)
    except MicrosoftError as error:
        if error.code == "ErrorAccessDenied":
            run.passed(
                SCOPE,
                "outside_refused",
                outside=configuration.outside_mailbox,
                group=group,
                code=error.code,
                message=error.message,
            )
            return True
        run.failed(SCOPE, error)
        return False
    run.failed(
        SCOPE,
        MicrosoftError(
            "scope_not_enforced",
            f"The calendars of {configuration.outside_mailbox}, outside {group}, could be read.",
        ),
    )
    return False


def _group_link(run: _Run, configuration: Configuration, token: identity.AppToken) -> None:
    """Group following: the token holds a permission to read group members, and the
    group's members can be read with it."""
    held = [role for role in GROUP_PERMISSIONS if role in token.roles]
    if not held:
        granted = ", ".join(token.roles) or "none"
        run.failed(
            GROUP,
            MicrosoftError("no_group_role", f"Application permissions in the token: {granted}."),
        )
        return
    group = configuration.followed_group
    try:
        members = graph.group_members(cloud(configuration.cloud), token.access_token, group)
    except MicrosoftError as error:
        run.failed(GROUP, error)
        return
    run.passed(GROUP, "group_members", count=len(members), group=group, roles=", ".join(held))


def _calendars_read(run: _Run, mailbox: str, calendars) -> None:
    if calendars:
        names = ", ".join(c.name for c in calendars)
        run.passed(MAILBOX, "calendars", mailbox=mailbox, names=names)
    else:
        run.passed(MAILBOX, "no_calendars", mailbox=mailbox)


def begin_delegated_checks(
    configuration: Configuration, actor: str, sign_in: bool = True
) -> str | None:
    """The links before the administrator's sign-in; return the run ID if they hold.

    With ``sign_in=False`` (support, or a rotation, where no administrator signs in after)
    the run ends with those links: if they hold, the configuration stays as verified as the
    last complete run left it (see ``rechecked``)."""
    run = _Run(configuration, actor=actor)
    token = _app_only_links(run, configuration, require_roles=False)
    if token is None or not sign_in:
        _finish(run, actor)
        return None if token is None else run.run_id
    db.session.commit()
    return run.run_id


def finish_delegated_checks(
    configuration: Configuration,
    run_id: str,
    sign_in: identity.SignIn | MicrosoftError,
    actor: str,
) -> None:
    """Finish the chain started before the administrator's sign-in, with that sign-in
    (or Microsoft's refusal of it)."""
    run = _Run(configuration, run_id, actor=actor)
    where = cloud(configuration.cloud)
    if isinstance(sign_in, MicrosoftError):
        run.failed(SIGNED_IN, sign_in)
        _finish(run, actor)
        return
    run.passed(SIGNED_IN, "signed_in", user=sign_in.username)
    if REQUIRED_PERMISSION not in sign_in.scopes:
        run.failed(
            PERMISSION,
            MicrosoftError("no_scope", f"Granted: {', '.join(sign_in.scopes) or 'nothing'}."),
        )
        _finish(run, actor)
        return
    run.passed(PERMISSION, "scopes", scopes=", ".join(sign_in.scopes))
    try:
        calendars = graph.list_calendars(where, sign_in.access_token)
    except MicrosoftError as error:
        run.failed(MAILBOX, error)
    else:
        _calendars_read(run, sign_in.username, calendars)
    _finish(run, actor)


def _finish(run: _Run, actor: str) -> None:
    configuration = run.configuration
    db.session.flush()
    links = [v for v in configuration.verifications if v.run_id == run.run_id]
    broken = next((v for v in links if v.outcome == CheckOutcome.FAILED), None)
    complete = broken is None and len(links) == len(chain(configuration))
    if rechecked(configuration, links):
        outcome = "passed tenant, application and certificate (the sign-in was not part of it)"
    else:
        configuration.verified_at = utcnow() if complete else None
        outcome = CheckOutcome.PASSED if complete else CheckOutcome.FAILED
    if broken:
        with force_locale("en"):  # the audit trail is in English, whoever ran the checks
            outcome = f"failed at {LABELS[broken.kind]}"
    record(configuration.institution, actor, "verification_run", outcome)
    db.session.commit()
    log.log(
        logging.WARNING if broken else logging.INFO,
        "Verification of %s (%s, run %s, by %s): %s%s.",
        configuration.institution.slug,
        configuration.method,
        run.run_id,
        actor,
        outcome,
        f" ({broken.error_code})" if broken and broken.error_code else "",
    )


def check_certificate(configuration: Configuration, certificate, actor: str) -> bool:
    """Whether Microsoft accepts ``certificate`` for the configuration's app, checked
    without touching the configuration's own verification."""
    run = _Run(configuration, purpose="rotation", actor=actor)
    accepted = _app_only_links(run, configuration, require_roles=False, certificate=certificate)
    outcome = "accepted" if accepted else "not accepted yet"
    record(
        configuration.institution,
        actor,
        "certificate_checked",
        f"new certificate {certificate.sha1_thumbprint}: {outcome}",
    )
    db.session.commit()
    return accepted is not None


def fingerprint(configuration: Configuration) -> str:
    """A digest of every value the chain checks: a run is current while it matches."""
    group = configuration.group
    certificate = configuration.certificate
    values = {
        "method": configuration.method,
        "cloud": configuration.cloud,
        "certificate": certificate.sha1_thumbprint if certificate else None,
        "tenant": configuration.tenant_id,
        "client": configuration.client_id,
        "limited": configuration.limited_to_group,
        "group": group,
        "limit": configuration.group_scope_method if group else None,
    }
    if configuration.followed_group:  # only then is there a link for it
        values["follow"] = True
    if configuration.method == Method.APPLICATION:  # delegated checks the signed-in user
        values["mailbox"] = configuration.test_mailbox
        values["outside"] = configuration.outside_mailbox if group else None
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


@contextmanager
def watch(configuration: Configuration):
    """Forget that the configuration verified if the block changes a value a check used."""
    before = fingerprint(configuration)
    yield
    if fingerprint(configuration) != before:
        configuration.verified_at = None


def checked_before_change(configuration: Configuration, run: list) -> bool:
    """Whether ``run`` (the latest run's links) used values the configuration no longer has.

    A run that passed every link while the configuration is not verified is also old: the
    configuration changed after it (runs from before fingerprints were kept have none).
    """
    if not run:
        return False
    recorded = run[0].inputs
    if recorded is not None and recorded != fingerprint(configuration):
        return True
    complete = len(run) == len(chain(configuration)) and all(v.outcome != "failed" for v in run)
    return complete and configuration.verified_at is None


def rechecked(configuration: Configuration, run: list[Verification]) -> bool:
    """Whether ``run`` is a delegated run that passed the links before the sign-in and went
    no further: support's re-check, a rotation's, or a sign-in the administrator did not
    finish. It neither verifies the configuration nor erases what the last complete run
    showed of the links after it."""
    first = {link.kind for link in FIRST_LINKS}
    return (
        configuration.method == Method.DELEGATED
        and len(run) == len(first)
        and {v.kind for v in run} == first
        and all(v.outcome == CheckOutcome.PASSED for v in run)
    )


@dataclass(frozen=True)
class Recheck:
    """The latest run of a delegated configuration, when it stopped before the sign-in:
    when it ran, whether MyTimetable support ran it, whether it passed the links it checked
    (``rechecked``), and when the whole chain last passed (None: not verified)."""

    at: datetime
    by_support: bool
    passed: bool
    complete_at: datetime | None


def shown_run(configuration: Configuration) -> tuple[list[Verification], Recheck | None]:
    """The links to show for the configuration's verification, and, when the latest run
    stopped before the sign-in, what to say about it.

    Usually the latest run. When that run only re-checked the links before the sign-in and
    passed them, while the configuration is verified, the last complete run's links after
    the sign-in follow its own, each shown with the time it was checked."""
    latest = configuration.latest_run()
    if configuration.method != Method.DELEGATED or not latest:
        return latest, None
    if any(v.kind == SIGNED_IN.kind for v in latest):
        return latest, None
    shown, passed = list(latest), rechecked(configuration, latest)
    if passed and configuration.verified:
        complete = [
            run for run in configuration.runs() if any(v.kind == SIGNED_IN.kind for v in run)
        ]
        if complete:
            shown += [v for v in complete[-1] if v.kind not in {v.kind for v in latest}]
    actor = latest[0].actor
    return shown, Recheck(
        at=latest[0].created_at,
        by_support=actor is not None and staff.find(actor) is not None,
        passed=passed,
        complete_at=configuration.verified_at if configuration.verified else None,
    )
