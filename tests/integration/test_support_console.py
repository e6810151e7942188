"""The console's rules: approval only of a complete configuration, confirmation before the
actions that cannot be undone, who a rotation asks, search by mailbox, paging of each list."""

import re
import uuid
from datetime import timedelta

import pytest

from portal import certificates, invitations, review
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Certificate,
    CheckOutcome,
    Configuration,
    Connection,
    Institution,
    Invitation,
    Notification,
    Status,
    Verification,
    record,
    utcnow,
)
from tests.integration.test_support import submitted_configuration


@pytest.fixture
def submitted(app, console, wizard, invitation):
    """A managed configuration submitted with everything approval needs."""
    return submitted_configuration(app, wizard, invitation["managed"])


def _failed_run(configuration: Configuration) -> None:
    run_id = str(uuid.uuid4())
    for kind, outcome in (("tenant_found", CheckOutcome.PASSED), ("application_found", "failed")):
        db.session.add(
            Verification(configuration=configuration, run_id=run_id, kind=kind, outcome=outcome)
        )


def _expired(configuration: Configuration) -> None:
    certificate = configuration.certificate
    certificate.not_after = utcnow() - timedelta(days=1)


INCOMPLETE = {
    "not verified": (lambda c: setattr(c, "verified_at", None), "Latest verification passed"),
    "latest run failed": (_failed_run, "Latest verification passed"),
    "no feed address": (lambda c: setattr(c, "feed_url_template", None), "Timetable feed"),
    "no certificate": (lambda c: setattr(c, "certificate_id", None), "Certificate present"),
    "expired certificate": (_expired, "Certificate present"),
    "no tenant": (lambda c: setattr(c, "tenant_id", None), "Method, tenant and application"),
}


@pytest.mark.parametrize("case", INCOMPLETE)
def test_approving_an_incomplete_configuration_is_refused_with_409(app, console, submitted, case):
    change, task = INCOMPLETE[case]
    with app.app_context():
        change(db.session.get(Configuration, submitted))
        db.session.commit()
    detail = f"/support/configurations/{submitted}"

    page = console.client.get(detail).text
    assert re.search(r'<button[^>]*disabled aria-describedby="approve-reason"', page)
    reason = re.search(r'id="approve-reason">([^<]+)<', page).group(1)
    assert task in reason
    assert re.search(rf"{task}[^<]*(</a>)?\s*(<p[^>]*>[^<]*</p>)?\s*</div>\s*<div[^>]*>"
                     r"<strong class=\"tag tag-todo\">Not done", page)  # fmt: skip

    refused = console.confirm(f"{detail}/approve")
    assert refused.status_code == 409
    assert "Not approved: the configuration is not complete yet" in refused.text
    assert task in refused.text
    asked = console.client.get(f"{detail}/approve/confirm")
    assert asked.status_code == 409 and "Yes, approve" not in asked.text
    with app.app_context():
        assert db.session.get(Configuration, submitted).status == Status.SUBMITTED
        assert not db.session.query(AuditEvent).filter_by(action="approved").count()


def test_a_complete_configuration_shows_every_task_done_and_approves(app, console, submitted):
    detail = f"/support/configurations/{submitted}"
    page = console.client.get(detail).text
    assert page.count('<strong class="tag tag-todo">') == 0 and page.count(">Done<") == 5
    assert 'id="approve-reason"' not in page
    form = re.search(r'<form method="get" action="([^"]+)"><button[^>]*>Approve<', page)
    asked = console.client.get(form.group(1))
    assert (
        asked.status_code == 200
        and "Approve the configuration of Example University?" in asked.text
    )
    assert 'name="confirmed" value="yes"' in asked.text
    assert console.confirm(f"{detail}/approve").status_code == 302
    with app.app_context():
        assert db.session.get(Configuration, submitted).status == Status.APPROVED


def test_the_service_refuses_too_whatever_the_console_shows(app, submitted):
    with app.app_context():
        configuration = db.session.get(Configuration, submitted)
        configuration.feed_url_template = None
        with pytest.raises(review.IncompleteError) as refused:
            review.approve(configuration, "someone")
        assert [task.key for task in refused.value.missing] == ["feed"]


def test_an_approve_without_the_confirmation_changes_nothing(app, console, submitted):
    answer = console.post(f"/support/configurations/{submitted}/approve")
    assert answer.status_code == 303
    assert answer.location.endswith(f"/support/configurations/{submitted}/approve/confirm")
    with app.app_context():
        assert db.session.get(Configuration, submitted).status == Status.SUBMITTED


def test_a_revoke_without_the_confirmation_changes_nothing(app, console, invitation):
    with app.app_context():
        link = db.session.query(Invitation).first()
        link_id, name = link.id, link.institution.name
    answer = console.post(f"/support/invitations/{link_id}/revoke")
    assert answer.status_code == 303 and answer.location.endswith("/revoke/confirm")
    with app.app_context():
        assert db.session.get(Invitation, link_id).revoked_at is None
    asked = console.client.get(answer.location)
    assert f"Revoke invitation link #{link_id}?" in asked.text and name in asked.text
    assert console.confirm(f"/support/invitations/{link_id}/revoke").status_code == 302
    with app.app_context():
        assert db.session.get(Invitation, link_id).revoked_at is not None
    # a second look says it is done, instead of asking again
    assert console.client.get(answer.location).location.endswith("/support/institutions")


def test_a_new_link_without_the_confirmation_changes_nothing(app, console, invitation):
    with app.app_context():
        institution = db.session.query(Institution).filter_by(name="Example University").one()
        institution_id, before = institution.id, len(institution.invitations)
    answer = console.post(f"/support/institutions/{institution_id}/invitations")
    assert answer.status_code == 303 and answer.location.endswith("/invitations/confirm")
    asked = console.client.get(answer.location)
    assert "Make a new invitation link for Example University?" in asked.text
    assert "stops working" in asked.text  # the link that still works is named
    with app.app_context():
        assert len(db.session.get(Institution, institution_id).invitations) == before
        assert not db.session.query(Invitation).filter(Invitation.revoked_at.is_not(None)).count()


def test_a_rotation_start_without_the_confirmation_changes_nothing(app, console, invitation):
    answer = console.post("/support/certificates/rotation/start")
    assert answer.status_code == 303 and answer.location.endswith("/rotation/start/confirm")
    assert "Start a rotation?" in console.client.get(answer.location).text
    with app.app_context():
        assert Certificate.upcoming_vendor() is None


def test_the_console_asks_through_pages_that_work_without_javascript(app, console, invitation):
    page = console.client.get("/support/institutions").text
    # Revoke and New link open their confirmation pages (GET forms): no post, no script
    assert re.search(r'<form method="get" action="/support/invitations/\d+/revoke/confirm"', page)
    assert re.search(
        r'<form method="get" action="/support/institutions/\d+/invitations/confirm"', page
    )
    certificates_page = console.client.get("/support/certificates").text
    assert 'action="/support/certificates/rotation/start/confirm"' in certificates_page
    assert "confirm(" not in page + certificates_page


def _institution_with(status: str, name: str, vendor: Certificate) -> None:
    institution = invitations.create_institution(name, "managed", f"it@{name.lower()}.edu", "t")
    configuration = institution.configuration
    configuration.status, configuration.certificate = status, vendor
    configuration.tenant_id, configuration.client_id = "example.edu", str(uuid.uuid4())


def test_a_rotation_asks_only_institutions_with_a_submitted_or_approved_configuration(app, console):
    with app.app_context():
        vendor = certificates.create_vendor_certificate(365, "test")
        for status in Status:
            _institution_with(status, f"School {status.value.replace('_', '')}", vendor)
        db.session.commit()
    asked = console.client.get("/support/certificates/rotation/start/confirm").text
    assert "2 institutions are asked" in asked
    assert "School submitted" in asked and "School approved" in asked
    assert "School draft" not in asked and "School changesrequested" not in asked

    assert console.confirm("/support/certificates/rotation/start").status_code == 302
    with app.app_context():
        told = {n.institution.name for n in db.session.query(Notification)}
        requested = {
            e.institution_id
            for e in db.session.query(AuditEvent).filter_by(action="rotation_requested")
        }
    assert told == {"School submitted", "School approved"} and len(requested) == 2
    progress = console.client.get("/support/certificates").text
    assert "School approved" in progress and "School draft" not in progress


def _connection(configuration_id: int, upn: str) -> None:
    db.session.add(Connection(configuration_id=configuration_id, upn=upn))


def test_search_finds_an_institution_by_a_mailbox_address(app, console, invitation):
    with app.app_context():
        university = db.session.query(Institution).filter_by(name="Example University").one()
        _connection(university.configuration.id, "Adele.Vance@contoso.edu")
        db.session.commit()
    for path in ("/support/?q=adele.vance", "/support/institutions?q=ADELE.VANCE@contoso"):
        page = console.client.get(path).text
        assert "Example University" in page and "Example College" not in page, path
    # the institutions page also finds by name and administrator's address
    assert "Example College" in console.client.get("/support/institutions?q=college").text
    assert "Example College" in console.client.get("/support/institutions?q=b@x.edu").text
    # a wildcard in the search is a character, not a pattern
    none = console.client.get("/support/institutions?q=%25").text
    assert "No institution matches." in none


def _rows(page: str, pattern: str) -> int:
    return len(re.findall(pattern, page))


def test_the_institutions_list_pages(app, console):
    with app.app_context():
        for n in range(30):
            invitations.create_institution(f"School {n:02}", "managed", "a@x.edu", "t")
        db.session.commit()
    first = console.client.get("/support/institutions").text
    assert "Page 1 of 2" in first and "School 24" in first and "School 25" not in first
    second = console.client.get("/support/institutions?page=2").text
    assert "School 25" in second and "School 29" in second and "School 00" not in second
    # a search keeps its pages
    searched = console.client.get("/support/institutions?q=school&page=2").text
    assert 'href="/support/institutions?q=school&amp;page=1"' in searched
    assert console.client.get("/support/institutions?page=99999999999999999999").status_code == 200


def test_the_outbox_pages(app, console):
    with app.app_context():
        institution = invitations.create_institution("Example", "managed", "a@x.edu", "t")
        for n in range(30):
            db.session.add(
                Notification(
                    institution=institution,
                    recipient="a@x.edu",
                    subject=f"Message {n:02}",
                    body="b",
                )
            )
        db.session.commit()
    first = console.client.get("/support/outbox").text
    assert "Page 1 of 2" in first and "Message 29" in first and "Message 04" not in first
    assert "Message 04" in console.client.get("/support/outbox?page=2").text


def test_the_certificates_progress_pages(app, console):
    with app.app_context():
        vendor = certificates.create_vendor_certificate(365, "test")
        for n in range(30):
            _institution_with(Status.APPROVED, f"School {n:02}", vendor)
        db.session.commit()
    first = console.client.get("/support/certificates").text
    assert "Page 1 of 2" in first and "School 24" in first and "School 25" not in first
    assert "School 29" in console.client.get("/support/certificates?page=2").text


def test_the_configuration_page_pages_its_mailboxes_and_audit_trail(app, console, submitted):
    with app.app_context():
        configuration = db.session.get(Configuration, submitted)
        configuration.status = Status.APPROVED
        for n in range(30):
            _connection(submitted, f"user{n:02}@contoso.edu")
            record(configuration.institution, "t", "feed_set", f"change {n:02}")
        db.session.commit()
    detail = f"/support/configurations/{submitted}"
    first = console.client.get(detail).text
    assert "Mailboxes (30)" in first
    assert "user24@contoso.edu" in first and "user25@contoso.edu" not in first
    assert "change 29" in first and "change 04" not in first  # the newest first
    assert 'aria-label="Pages of mailboxes"' in first
    assert 'aria-label="Pages of the audit trail"' in first
    both = console.client.get(f"{detail}?mailboxes_page=2&audit_page=2").text
    assert "user25@contoso.edu" in both and "user00@contoso.edu" not in both
    assert "change 04" in both and "change 29" not in both
    # moving one list keeps the other's page
    assert f"{detail}?mailboxes_page=2&amp;audit_page=1#audit" in both


def test_older_verification_runs_fold_away(app, console, submitted):
    with app.app_context():
        configuration = db.session.get(Configuration, submitted)
        for _n in range(3):
            _failed_run(configuration)
            db.session.flush()
        db.session.commit()
    page = console.client.get(f"/support/configurations/{submitted}").text
    runs = re.findall(r'<details class="run"\s*(open)?\s*>', page)
    assert runs == ["open", "", ""]
    assert "(latest run)" in page


def test_the_console_texts_are_in_dutch(app, console, submitted):
    console.client.set_cookie("portal_language", "nl")
    with app.app_context():
        db.session.get(Configuration, submitted).feed_url_template = None
        db.session.commit()
    page = console.client.get(f"/support/configurations/{submitted}").text
    for dutch in ("Voor goedkeuring", "Niet gedaan", "Adres van de roosterfeed ingesteld"):
        assert dutch in page, dutch
    refused = console.confirm(f"/support/configurations/{submitted}/approve")
    assert "Niet goedgekeurd" in refused.text


def test_the_queue_reads_its_rows_runs_in_one_query_whatever_their_number(app, console):
    """Each row of the queue shows its institution and whether its configuration is
    verified, which reads its latest run: they come with the page, not in a query a row."""
    from tests.integration.test_request_path import statements

    def add_with_a_run(count: int) -> None:
        with app.app_context():
            for _ in range(count):
                name = f"School {uuid.uuid4().hex[:8]}"
                made = invitations.create_institution(name, "managed", "it@x.edu", "t")
                made.configuration.verified_at = utcnow()
                _failed_run(made.configuration)
            db.session.commit()

    def queue_statements() -> int:
        with statements(app) as sent:
            assert console.client.get("/support/").status_code == 200
        return len(sent)

    add_with_a_run(2)
    few = queue_statements()
    add_with_a_run(6)
    assert queue_statements() == few
