"""Support's command line: institutions, invitation links, the vendor certificate, demo data."""

import re

from portal.extensions import db
from portal.models import AuditEvent, Certificate, Institution
from tests.conftest import Wizard


def test_invite_create_prints_a_link_that_opens_the_wizard(app, runner):
    result = runner.invoke(
        args=["invite", "create", "Example University", "--hosting", "managed",
              "--email", "admin@example.edu"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    link = re.search(r"(http://localhost/setup/i/\S+)", result.output).group(1)
    page = Wizard(app.test_client()).open(link)
    assert page.request.path == "/setup/start" and "Example University" in page.text
    with app.app_context():
        institution = db.session.query(Institution).one()
        assert (institution.slug, institution.hosting) == ("example-university", "managed")
        assert [e.action for e in db.session.query(AuditEvent)] == [
            "institution_created",
            "invitation_issued",
        ]


def test_invite_create_refuses_an_unknown_hosting(runner):
    result = runner.invoke(args=["invite", "create", "X", "--hosting", "cloud", "--email", "a@b.c"])
    assert result.exit_code == 2 and "managed" in result.output


def test_invite_create_refuses_a_name_with_control_characters(app, runner):
    result = runner.invoke(
        args=["invite", "create", "X\noffice365.authority=https://evil.example/",
              "--hosting", "on_premises", "--email", "a@b.c"]
    )  # fmt: skip
    assert result.exit_code == 2 and "control characters" in result.output
    with app.app_context():
        assert db.session.query(Institution).count() == 0


def test_invite_reissue_makes_a_new_link_and_the_old_one_stops_working(app, runner):
    created = runner.invoke(
        args=["invite", "create", "Example", "--hosting", "on_premises", "--email", "a@b.c"]
    )
    result = runner.invoke(args=["invite", "reissue", "example"])
    assert result.exit_code == 0 and "/setup/i/" in result.output
    old = re.search(r"http://localhost(/setup/i/\S+)", created.output).group(1)
    assert app.test_client().get(old).status_code == 410
    new = re.search(r"(http://localhost/setup/i/\S+)", result.output).group(1)
    assert Wizard(app.test_client()).open(new).request.path == "/setup/start"
    assert runner.invoke(args=["invite", "reissue", "nope"]).exit_code == 1


def test_vendor_cert_create_makes_the_current_certificate(app, runner):
    first = runner.invoke(args=["vendor-cert", "create", "--days", "365"])
    second = runner.invoke(args=["vendor-cert", "create"])
    assert first.exit_code == 0 and second.exit_code == 0
    with app.app_context():
        assert db.session.query(Certificate).filter_by(current=True).count() == 1
        assert Certificate.current_vendor().sha1_thumbprint in second.output


def test_demo_adds_data_once_and_prints_fresh_links(app, runner):
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert len(re.findall(r"/setup/i/\S+", second.output)) == 2
    with app.app_context():
        assert db.session.query(Institution).count() == 2
        assert db.session.query(Certificate).count() == 1
