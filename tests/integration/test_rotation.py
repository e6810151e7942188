"""Rotating the vendor certificate: each institution switches once Microsoft accepts the
new certificate in its tenant; the rest keep the old one, which still works."""

import re
from email import message_from_bytes, policy

import pytest

from portal import invitations, rotation, staff, verification
from portal.extensions import db
from portal.models import Certificate, Configuration
from tests.conftest import Wizard
from tests.integration.conftest import PASSWORD, Console
from tests.integration.test_consent_routes import Administrator
from tests.integration.test_notifications import wait_for
from tests.integration.test_support_recheck import chain_states, sign_in_and_check


@pytest.fixture
def rollout(make_app, standins, configure):
    """An approved managed configuration of the demo tenant on the current vendor cert."""
    app = make_app(**standins.settings())
    app.config["test.configuration_id"] = configure(
        app, consented=False, test_mailbox="adele.vance@contoso.edu"
    )
    with app.app_context():
        staff.create_staff("support@mytimetable.example", PASSWORD)
        db.session.commit()
    return app


def configuration(app) -> Configuration:
    config = db.session.get(Configuration, app.config["test.configuration_id"])
    _ = config.certificate
    return config


def test_rotation_switches_only_once_the_new_certificate_is_accepted(rollout, standins, inbox):
    app = rollout
    app.config["SMTP_URL"] = inbox.url
    console = Console(app.test_client())
    console.sign_in("support@mytimetable.example")
    assert console.confirm("/support/certificates/rotation/start").status_code == 302

    with app.app_context():
        new = Certificate.upcoming_vendor()
        new_pem, new_id = new.public_pem, new.id
    message = wait_for(app, lambda n: n.sent_at is not None)
    assert new.sha1_thumbprint in message.body and message.recipient == "it@contoso.edu"
    # the link is a key: it goes out in the e-mail, and the outbox keeps the text without it
    assert "/setup/i/" not in message.body and "link is not kept" in message.body
    outbox = console.client.get("/support/outbox").text
    assert "/setup/i/" not in outbox and new.sha1_thumbprint in outbox
    sent = message_from_bytes(inbox.messages[0].content, policy=policy.default).get_content()
    link = re.search(r"(http://localhost/setup/i/\S+\?to=rotation)", sent).group(1)

    admin = Wizard(app.test_client())
    page = admin.open(link)
    assert page.request.path == "/setup/rotation" and "Add MyTimetable" in page.text
    assert admin.client.get("/setup/rotation.cer").status_code == 200

    failed = admin.client.get(admin.post("/setup/rotation", page="/setup/rotation").location)
    assert (
        "does not accept the new certificate yet" in failed.text and "AADSTS700027" in failed.text
    )
    with app.app_context():
        config = configuration(app)
        assert config.certificate_id != new_id and config.verified_at is not None
        assert [v.kind for v in config.latest_run()] == []  # the wizard's chain is untouched

    standins.registration.certificates.append(new_pem)  # the administrator uploads it
    switched = admin.client.get(admin.post("/setup/rotation", page="/setup/rotation").location)
    assert "MyTimetable uses the new certificate" in switched.text
    with app.app_context():
        assert configuration(app).certificate_id == new_id

    table = console.client.get("/support/certificates").text
    assert "<strong>Yes</strong>" in table
    console.post("/support/certificates/rotation/finish")
    with app.app_context():
        assert Certificate.current_vendor().id == new_id and Certificate.upcoming_vendor() is None


def test_support_checks_every_institution_at_once(rollout, standins):
    app = rollout
    with app.app_context():
        new = rotation.start("support")
        assert rotation.check_all("support") == (0, 1)
        standins.registration.certificates.append(new.public_pem)
        assert rotation.check_all("support") == (1, 0)
        assert configuration(app).certificate_id == new.id
        rows = rotation.progress().items
        assert rows[0].switched and rows[0].accepted


def test_a_switch_runs_the_configurations_checks_again_with_the_new_certificate(rollout, standins):
    # Otherwise step 6 shows every check "checked before your last change".
    standins.registration.admin_consented = True
    with rollout.app_context():
        new = rotation.start("support")
        standins.registration.certificates.append(new.public_pem)
        assert rotation.check(configuration(rollout), "support")
        config = configuration(rollout)
        run = config.latest_run()
        assert [v.outcome for v in run] == ["passed"] * 5 + ["skipped"]
        assert new.sha1_thumbprint in run[2].evidence
        assert config.verified_at and not verification.checked_before_change(config, run)


def test_a_delegated_switch_checks_the_first_links_again_and_keeps_the_sign_in_shown(
    make_app, standins, configure
):
    app = make_app(**standins.settings())
    configuration_id = configure(
        app, method="delegated", status="draft", verified_at=None, step_reached=5
    )
    with app.app_context():
        institution = db.session.get(Configuration, configuration_id).institution
        link = invitations.issue_invitation(institution, "t")
        db.session.commit()
    wizard = Wizard(app.test_client())
    wizard.open(link)
    sign_in_and_check(Administrator(wizard, standins))
    with app.app_context():
        config = db.session.get(Configuration, configuration_id)
        config.status = "approved"
        staff.create_staff("support@mytimetable.example", PASSWORD)
        new = rotation.start("support@mytimetable.example")
        thumbprint = new.sha1_thumbprint
        standins.registration.certificates.append(new.public_pem)
        assert rotation.check(config, "support@mytimetable.example")  # as check_all does
        assert config.verified
        link = invitations.issue_invitation(config.institution, "t")
        db.session.commit()
    wizard.open(link)
    page = wizard.client.get("/setup/review").text
    # The first links checked with the new certificate, the sign-in and the rest from the
    # complete run before: nothing shown as checked before a change.
    assert chain_states(page) == ["passed"] * 6 and "Checked before your last change" not in page
    assert thumbprint in page and "Every check passed on" in page
    assert "MyTimetable support checked tenant, application and certificate again" in page


def test_the_rotation_page_says_how_many_days_are_left_in_dutch(rollout):
    with rollout.app_context():
        rotation.start("support")
        link = invitations.issue_invitation(configuration(rollout).institution, "t")
        db.session.commit()
    admin = Wizard(rollout.test_client())
    admin.open(link)
    page = admin.client.get("/setup/rotation", headers={"Accept-Language": "nl-NL,nl;q=0.9"})
    assert page.status_code == 200 and "dagen). Voeg het nieuwe certificaat" in page.text


def test_a_second_rotation_cannot_start_while_one_is_under_way(rollout):
    with rollout.app_context():
        rotation.start("support")
        with pytest.raises(rotation.RotationError):
            rotation.start("support")


def test_rotation_page_is_404_without_a_rotation(rollout):
    with rollout.app_context():
        links = invitations.issue_invitation(configuration(rollout).institution, "t")
        db.session.commit()
    admin = Wizard(rollout.test_client())
    admin.open(links)
    assert admin.client.get("/setup/rotation").status_code == 404
    assert admin.client.get("/setup/rotation.cer").status_code == 404
