"""Rotating the vendor certificate across every managed institution.

Each institution's administrator must add the new certificate to their own app
registration before the old one expires. The portal makes the new certificate, tells
each administrator (with a fresh invitation link to a one-page step), checks the new
certificate against each tenant, and switches a configuration to it only once Microsoft
accepts it there; the others keep the old certificate, which still works until it expires.
"""

from dataclasses import dataclass
from datetime import datetime

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select

from . import certificates, invitations, notifications, verification
from .extensions import db
from .i18n import lazy_gettext as _l
from .microsoft import errors
from .models import (
    Certificate,
    CheckOutcome,
    Configuration,
    Hosting,
    Institution,
    Method,
    Status,
    record,
)
from .paging import Page, paginate

# Only an institution that has handed its configuration in (or whose configuration is in
# use) is asked to add a new certificate: a draft may never be finished, and one returned
# for changes gets the current certificate when its administrator goes on.
CAMPAIGN_STATUSES = (Status.SUBMITTED, Status.APPROVED)


# The new certificate refused at its link: not uploaded yet, or not yet taken in by
# Microsoft. The wizard's advice for these codes points to step 2 and to removing older
# copies, which in a rotation would stop MyTimetable signing in before it has switched.
NOT_ADDED_YET = errors.Advice(
    _l("Microsoft does not accept the new certificate for this app yet."),
    _l(
        "Upload the .cer file from 1 in the app registration as described in 2, beside the "
        "old certificate, then check again. Microsoft can take a few minutes to accept a "
        "newly uploaded certificate."
    ),
)


class RotationError(Exception):
    """The rotation cannot do what was asked; the message says why."""


@dataclass
class Progress:
    """One institution's part in the rotation."""

    configuration: Configuration
    switched: bool
    checked_at: datetime | None
    accepted: bool | None
    days_left: int | None


def _participants_query():
    return (
        select(Configuration)
        .join(Institution)
        .join(Certificate, Configuration.certificate_id == Certificate.id)
        .where(
            Institution.hosting == Hosting.MANAGED,
            Certificate.source == "vendor",
            Configuration.status.in_(CAMPAIGN_STATUSES),
        )
        .order_by(Institution.name, Configuration.id)
    )


def participants() -> list[Configuration]:
    """Managed configurations, submitted or approved, that sign in with a vendor
    certificate: the ones a rotation asks to add the new certificate."""
    return list(db.session.scalars(_participants_query()))


def start(actor: str, days: int = 730) -> Certificate:
    """Make the next vendor certificate and ask every managed institution to add it."""
    if Certificate.upcoming_vendor() is not None:
        raise RotationError(_("A rotation is already under way."))
    new = certificates.create_vendor_certificate(days, actor, upcoming=True)
    for configuration in participants():
        if configuration.certificate_id == new.id:
            continue
        link = invitations.issue_invitation(configuration.institution, actor)
        old = configuration.certificate
        institution = configuration.institution
        with notifications.in_language(institution):
            notifications.queue(
                institution,
                _("MyTimetable: add the new certificate to your app registration"),
                _(
                    "MyTimetable's certificate %(old)s expires on %(date)s. Before then, add "
                    "the new certificate %(new)s to the MyTimetable app registration in "
                    "Microsoft Entra ID, beside the old one, and let the portal check it:",
                    old=old.sha1_thumbprint,
                    date=format_date(old.not_after, "d MMMM y"),
                    new=new.sha1_thumbprint,
                )
                + f"\n\n{notifications.LINK}\n\n"
                + _(
                    "Nothing changes for your users; the old certificate keeps working until "
                    "you have added the new one."
                ),
                link=f"{link}?to=rotation",
            )
        record(configuration.institution, actor, "rotation_requested", new.sha1_thumbprint)
    db.session.commit()
    return new


def check(configuration: Configuration, actor: str) -> bool:
    """Check the new certificate for one configuration; switch to it if it is accepted."""
    new = Certificate.upcoming_vendor()
    if new is None:
        raise RotationError(_("No rotation is under way."))
    if configuration.certificate_id == new.id:
        return True
    if not verification.check_certificate(configuration, new, actor):
        return False
    old = configuration.certificate
    configuration.certificate = new
    record(
        configuration.institution,
        actor,
        "certificate_switched",
        f"from {old.sha1_thumbprint} to {new.sha1_thumbprint}",
    )
    db.session.commit()
    # The configuration's own results were checked with the old certificate, so they would
    # show as checked before a change: the chain runs again with the new one, as far as it
    # can without an administrator signing in (delegated: the links before the sign-in).
    if configuration.method == Method.APPLICATION and configuration.test_mailbox:
        verification.run_application_checks(configuration, actor)
    elif configuration.method == Method.DELEGATED:
        verification.begin_delegated_checks(configuration, actor, sign_in=False)
    return True


def advice_for(code: str | None) -> errors.Advice:
    """What the administrator should do about a link the new certificate's check failed."""
    if code in verification.CERTIFICATE_CODES:
        return NOT_ADDED_YET
    return errors.advice_for(code)


def check_all(actor: str) -> tuple[int, int]:
    """Check every institution not yet switched; return (switched now, still waiting)."""
    new = Certificate.upcoming_vendor()
    if new is None:
        raise RotationError(_("No rotation is under way."))
    switched = waiting = 0
    for configuration in participants():
        if configuration.certificate_id == new.id or not configuration.client_id:
            continue
        if check(configuration, actor):
            switched += 1
        else:
            waiting += 1
    return switched, waiting


def progress(page: int = 1) -> Page:
    """One page of the participating institutions: each switched or not, its last check,
    and the days left on its certificate."""
    new = Certificate.upcoming_vendor()
    result = paginate(_participants_query(), page)
    rows = []
    for configuration in result.items:
        checks = configuration.latest_run("rotation")
        rows.append(
            Progress(
                configuration=configuration,
                switched=new is not None and configuration.certificate_id == new.id,
                checked_at=checks[-1].created_at if checks else None,
                accepted=(
                    all(v.outcome == CheckOutcome.PASSED for v in checks) if checks else None
                ),
                days_left=configuration.certificate.days_left(),
            )
        )
    result.items = rows
    return result


def finish(actor: str) -> Certificate:
    """Make the new certificate the one new institutions get; the rest keep theirs."""
    new = Certificate.upcoming_vendor()
    if new is None:
        raise RotationError(_("No rotation is under way."))
    for old in db.session.scalars(select(Certificate).filter_by(source="vendor", current=True)):
        old.current = False
    new.current, new.upcoming = True, False
    record(None, actor, "rotation_finished", f"current vendor certificate {new.sha1_thumbprint}")
    db.session.commit()
    return new


def needs_action(configuration: Configuration) -> Certificate | None:
    """The new certificate, if this configuration still has to add it."""
    new = Certificate.upcoming_vendor()
    if new is None or configuration.certificate is None:
        return None
    if configuration.certificate.source != "vendor" or configuration.certificate_id == new.id:
        return None
    return new
