"""The support console: sign-in, the queue, review actions, invitations, exports, outbox."""

import json
import re
import time
from types import SimpleNamespace

import limits.storage.memory
import pytest

from portal.extensions import db
from portal.models import AuditEvent, Configuration, Institution, Invitation, Notification, utcnow
from tests.conftest import Wizard
from tests.integration.conftest import PASSWORD, Console

FEED = "https://mytimetable.example.edu/ical?user={upn}"


def submitted_configuration(app, wizard, link, tenant="contoso.onmicrosoft.com") -> int:
    """Walk the wizard and submit, with the verification marked as passed and the
    timetable feed set: everything approval needs."""
    wizard.open(link)
    wizard.to_tenant()
    wizard.enter_tenant(tenant, "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d")
    with app.app_context():
        config = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example University")
            .one()
        )
        config.verified_at, config.step_reached, config.test_mailbox = utcnow(), 6, "a@contoso.edu"
        config.feed_url_template = FEED
        db.session.commit()
        config_id = config.id
    assert wizard.post("/setup/submit").status_code == 302
    return config_id


def test_staff_create_can_generate_a_password_shown_once(app, runner):
    result = runner.invoke(args=["staff", "create", "ops@mytimetable.example", "--generate"])
    password = re.search(r"Password \(shown once\): (\S+)", result.output).group(1)
    assert (
        Console(app.test_client()).sign_in("ops@mytimetable.example", password).status_code == 302
    )
    assert (
        runner.invoke(args=["staff", "create", "ops@mytimetable.example", "--generate"]).exit_code
        == 1
    )


def test_passwords_are_stored_as_scrypt_hashes(app, staff_member):
    from portal.models import StaffUser

    with app.app_context():
        assert db.session.query(StaffUser).one().password_hash.startswith("scrypt:")


def test_sign_in_renews_the_session_id_and_failures_are_recorded(app, staff_member):
    console = Console(app.test_client())
    console.client.get("/support/sign-in")
    before = console.client.get_cookie("portal_session").value
    failed = console.sign_in(staff_member, "wrong password!")
    assert failed.status_code == 401 and "is not right" in failed.text
    assert console.sign_in(staff_member).status_code == 302
    assert console.client.get_cookie("portal_session").value != before
    assert console.client.get("/support/").status_code == 200
    with app.app_context():
        actions = [(e.actor, e.action) for e in db.session.query(AuditEvent)]
    assert (staff_member, "sign_in_failed") in actions and (staff_member, "signed_in") in actions


def support_routes(app):
    """Every console URL, with 1 for each ID, and the method it answers."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("support.") or rule.endpoint == "support.sign_in":
            continue
        path = re.sub(r"<int:\w+>", "1", rule.rule)
        path = re.sub(r"<any\((\w+)[^>]*>", r"\1", path)
        yield path, "POST" if "POST" in rule.methods and "GET" not in rule.methods else "GET"


def test_every_console_page_needs_a_staff_member_even_with_an_invitation(app, wizard, invitation):
    wizard.open(invitation["managed"])
    routes = list(support_routes(app))
    assert len(routes) >= 10
    for path, method in routes:
        response = wizard.client.open(path, method=method, data={"csrf_token": wizard.csrf()})
        assert response.status_code == 302 and response.location.endswith("/support/sign-in"), path


def test_every_route_with_an_id_gives_404_for_an_unknown_one(app, console):
    for path, method in support_routes(app):
        if "/1" not in path:
            continue
        response = console.client.open(
            path.replace("/1", "/999999"),
            method=method,
            data={"csrf_token": console.token("/support/")},
        )
        assert response.status_code == 404, path


def test_every_route_with_an_id_too_large_for_the_database_gives_404(app, console):
    for path, method in support_routes(app):
        if "/1" not in path:
            continue
        for too_large in ("/2147483648", "/9223372036854775808", "/99999999999999999999"):
            response = console.client.open(
                path.replace("/1", too_large, 1),
                method=method,
                data={"csrf_token": console.token("/support/")},
            )
            assert response.status_code == 404, path


def test_the_largest_id_the_database_holds_is_still_looked_up(console):
    assert console.client.get("/support/configurations/2147483647").status_code == 404


@pytest.mark.parametrize("signed_in", [False, True])
@pytest.mark.parametrize("path", ["/support/sign-in", "/support/institutions", "/support/sign-out"])
def test_an_oversized_post_under_support_is_refused_with_413(app, staff_member, signed_in, path):
    console = Console(app.test_client())
    if signed_in:
        assert console.sign_in(staff_member).status_code == 302
    token = console.token()
    response = console.client.post(
        path, data={"csrf_token": token, "email": "x" * (2 * 1024 * 1024), "password": "p"}
    )
    assert response.status_code == 413
    assert "text/html" in response.content_type and "Traceback" not in response.text


def test_wizard_urls_carry_no_ids_so_an_administrator_sees_only_their_institution(app):
    wizard_rules = [r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("setup.")]
    assert all("<int:" not in rule for rule in wizard_rules)


def test_queue_lists_submitted_first_oldest_first_with_filters_and_search(
    app, console, wizard, invitation
):
    submitted_configuration(app, wizard, invitation["managed"])
    page = console.client.get("/support/")
    rows = re.findall(r'<td><a href="/support/configurations/\d+">([^<]+)</a>', page.text)
    assert rows[0] == "Example University"
    assert "Example College" in rows
    assert "Example College" not in console.client.get("/support/?status=submitted").text
    assert "Example University" in console.client.get("/support/?q=CONTOSO").text
    assert "Example University" not in console.client.get("/support/?hosting=on_premises").text
    assert "Example University" in console.client.get("/support/?q=5b2f8c39").text
    assert console.client.get("/support/?status=bogus&page=-4&method=x").status_code == 200


def test_return_then_resubmit_then_approve_keeps_the_history(app, console, wizard, invitation):
    config_id = submitted_configuration(app, wizard, invitation["managed"])
    detail = f"/support/configurations/{config_id}"
    returned = console.post(
        f"{detail}/return", {"message": "Use your tenant's GUID, please.", "step": "tenant"}
    )
    assert returned.status_code == 302

    page = Wizard(app.test_client()).open(invitation["managed"])
    assert page.request.path == "/setup/tenant"
    assert "Use your tenant&#39;s GUID, please." in page.text

    wizard.enter_tenant(
        "9188040d-6c67-4c5b-b112-36a304b66dad", "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
    )
    with app.app_context():
        config = db.session.get(Configuration, config_id)
        assert config.status == "changes_requested" and config.verified_at is None
        config.verified_at, config.step_reached = utcnow(), 6
        db.session.commit()
    wizard.post("/setup/submit")
    assert console.confirm(f"{detail}/approve").status_code == 302

    with app.app_context():
        config = db.session.get(Configuration, config_id)
        assert config.status == "approved" and config.reviewed_by == "support@mytimetable.example"
        actions = [
            e.action
            for e in db.session.query(AuditEvent)
            .filter_by(institution_id=config.institution_id)
            .order_by(AuditEvent.id)
        ]
        subjects = [n.subject for n in db.session.query(Notification).order_by(Notification.id)]
    assert [a for a in actions if a in ("submitted", "returned", "approved")] == [
        "submitted",
        "returned",
        "submitted",
        "approved",
    ]
    assert len(subjects) == 4 and "is active" in subjects[-1]
    assert "Approved" in console.client.get(detail).text


def test_an_administrator_who_submits_in_dutch_gets_dutch_e_mails(app, console, wizard, invitation):
    wizard.client.set_cookie("portal_language", "nl")  # the switcher's choice
    config_id = submitted_configuration(app, wizard, invitation["managed"])
    # Support works in English; the administrator's e-mail stays in Dutch.
    assert console.confirm(f"/support/configurations/{config_id}/approve").status_code == 302
    with app.app_context():
        config = db.session.get(Configuration, config_id)
        assert config.institution.language == "nl"
        messages = db.session.query(Notification).order_by(Notification.id).all()
        texts = [(n.subject, n.body) for n in messages]
    assert (
        texts[0][0] == "MyTimetable: de Office 365-koppeling voor Example University is ingediend"
    )
    assert texts[1][0] == "MyTimetable: de Office 365-koppeling voor Example University is actief"
    assert "MyTimetable support heeft de configuratie goedgekeurd" in texts[1][1]
    assert "Open de uitnodigingslink" in texts[1][1]
    assert "Approved" in console.client.get(f"/support/configurations/{config_id}").text


def test_unverified_or_unsubmitted_configurations_cannot_be_approved(
    app, console, wizard, invitation
):
    config_id = submitted_configuration(app, wizard, invitation["managed"])
    with app.app_context():
        db.session.get(Configuration, config_id).verified_at = None
        db.session.commit()
    page = console.client.get(f"/support/configurations/{config_id}")
    assert re.search(r'<button[^>]*disabled aria-describedby="approve-reason"', page.text)
    refused = console.confirm(f"/support/configurations/{config_id}/approve")
    assert refused.status_code == 409 and "Latest verification passed" in refused.text
    empty = console.post(
        f"/support/configurations/{config_id}/return", {"message": "", "step": "tenant"}
    )
    assert empty.status_code == 302
    with app.app_context():
        assert db.session.get(Configuration, config_id).status == "submitted"


def test_institution_and_invitations_from_the_console(app, console):
    bad = console.post(
        "/support/institutions", {"name": "", "hosting": "x", "contact_email": "nope"}
    )
    assert bad.status_code == 400 and "Enter the institution" in bad.text
    made = console.post(
        "/support/institutions",
        {"name": "Fabrikam College", "hosting": "on_premises", "contact_email": "it@fabrikam.edu"},
    )
    page = console.client.get(made.location)
    link = re.search(r'data-copy="(http://localhost/setup/i/[^"]+)"', page.text).group(1)
    assert "It is shown only now" in page.text
    assert "/setup/i/" not in console.client.get("/support/institutions").text
    assert Wizard(app.test_client()).open(link).request.path == "/setup/start"

    with app.app_context():
        invitation_id = db.session.query(Invitation).one().id
        institution_id = db.session.query(Institution).one().id
    console.confirm(f"/support/invitations/{invitation_id}/revoke")
    assert app.test_client().get(link.replace("http://localhost", "")).status_code == 410
    reissued = console.client.get(
        console.confirm(f"/support/institutions/{institution_id}/invitations").location
    )
    assert re.search(r'data-copy="http://localhost/setup/i/', reissued.text)
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions[-4:] == [
        "institution_created",
        "invitation_issued",
        "invitation_revoked",
        "invitation_issued",
    ]


def test_exports_hold_no_secret(app, console, wizard, invitation):
    submitted_configuration(app, wizard, invitation["managed"])
    csv_text = console.client.get("/support/export.csv").text
    data = json.loads(console.client.get("/support/export.json").text)
    assert csv_text.startswith('"institution","hosting","status"')
    assert {c["institution"] for c in data["configurations"]} == {
        "Example University",
        "Example College",
    }
    for text in (csv_text, json.dumps(data)):
        assert "PRIVATE" not in text and "scrypt" not in text and "gAAAA" not in text


def test_outbox_shows_messages_kept_without_smtp(app, console, wizard, invitation):
    submitted_configuration(app, wizard, invitation["managed"])
    page = console.client.get("/support/outbox")
    assert "No SMTP server is configured" in page.text and "submitted" in page.text


def test_twenty_wrong_passwords_are_refused_and_the_right_one_works_after_the_window(
    make_app, runner, monkeypatch
):
    # An hour's window, so that slow password checks on a busy machine all fall in it; the
    # in-memory limiter's clock is then moved past the window instead of the test waiting.
    app = make_app(SIGNIN_LIMIT="5 per 1 hour", REDIS_URL=None)
    app.test_cli_runner().invoke(
        args=["staff", "create", "s@mytimetable.example"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    console = Console(app.test_client())
    codes = [console.sign_in("s@mytimetable.example", f"wrong {n}").status_code for n in range(20)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert console.sign_in("s@mytimetable.example").status_code == 429  # still inside the window
    other = Console(app.test_client())
    later = time.time() + 3601
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=lambda: later))
    assert other.sign_in("s@mytimetable.example").status_code == 302


def test_queue_pages_through_many_configurations(app, console):
    from portal import invitations

    with app.app_context():
        for n in range(30):
            invitations.create_institution(f"School {n:02}", "managed", "a@x.edu", "t")
        db.session.commit()
    first = console.client.get("/support/")
    assert "Page 1 of 2" in first.text and first.text.count("/support/configurations/") == 25
    second = console.client.get("/support/?page=2")
    assert second.text.count("/support/configurations/") == 5
    assert console.client.get("/support/?page=99").status_code == 200


def test_opening_a_link_asks_first_and_changes_nothing_until_confirmed(app, console, invitation):
    link = invitation["managed"].replace("http://localhost", "")
    page = console.client.get(link)
    assert page.status_code == 200 and "Example University" in page.text
    assert "signs you out of the support console" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert console.client.get("/support/").status_code == 200  # still signed in
    assert console.client.get("/setup/").status_code == 404  # and in no wizard
    with app.app_context():
        assert db.session.query(Invitation).filter_by(last_used_at=None).count() == 2
    # a form posted from elsewhere carries no CSRF token of this session
    assert console.client.post(link).status_code == 400
    assert console.client.get("/support/").status_code == 200
    opened = Wizard(console.client).open(invitation["managed"])
    assert opened.request.path == "/setup/start"
    assert console.client.get("/support/").location.endswith("/support/sign-in")


def test_a_new_link_revokes_the_older_ones(app, console, invitation):
    with app.app_context():
        institution_id = db.session.query(Institution).filter_by(name="Example University").one().id
    reissued = console.client.get(
        console.confirm(f"/support/institutions/{institution_id}/invitations").location
    )
    link = re.search(r'data-copy="(http://localhost/setup/i/[^"]+)"', reissued.text).group(1)
    assert (
        app.test_client().get(invitation["managed"].replace("http://localhost", "")).status_code
        == 410
    )
    assert Wizard(app.test_client()).open(link).request.path == "/setup/start"
    # the other institution's link is not touched
    assert Wizard(app.test_client()).open(invitation["on_premises"]).request.path == "/setup/start"
    with app.app_context():
        revoked = db.session.query(AuditEvent).filter_by(action="invitation_revoked").one()
        assert revoked.actor == "support@mytimetable.example" and "replaced" in revoked.detail
