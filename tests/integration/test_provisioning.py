"""Application permissions: mailboxes added without user action; refusals reported."""

import io

import pytest

from portal import invitations, provisioning
from portal.extensions import db
from portal.models import Configuration, Connection, SyncJob
from tests.conftest import Wizard

ADELE, MEGAN, ALEX = "adele.vance@contoso.edu", "megan.bowen@contoso.edu", "alex.wilber@contoso.edu"


@pytest.fixture
def approved(make_app, standins, configure):
    """An approved application-permissions configuration limited to the demo group."""
    app = make_app(**standins.settings())
    configure(
        app, security_group_email="mytimetable@contoso.edu", group_scope_method="access_policy"
    )
    with app.app_context():
        institution = db.session.query(Configuration).one().institution
        app.config["test.link"] = invitations.issue_invitation(institution, "t")
        db.session.commit()
    return app


@pytest.fixture
def admin(approved):
    wizard = Wizard(approved.test_client())
    wizard.open(approved.config["test.link"])
    return wizard


def test_parse_list_accepts_lines_commas_and_semicolons():
    found, rejected = provisioning.parse_list(f"{ADELE}\n{MEGAN}, {ADELE.upper()}; nonsense\n\n")
    assert found == [ADELE, MEGAN] and rejected == ["nonsense"]


def test_a_list_with_a_bad_address_adds_the_rest(approved, admin, standins):
    text = f"{ADELE}\n{MEGAN}\n{ALEX}\nnobody@contoso.edu\nlee.gu@contoso.edu\nnot-an-address"
    page = admin.post("/setup/mailboxes", {"addresses": text}, page="/setup/mailboxes")
    assert page.status_code == 200
    assert "Added 2" in page.text and "4 refused" not in page.text
    assert "Not addresses, so skipped: not-an-address" in page.text
    for refused in (ALEX, "nobody@contoso.edu", "lee.gu@contoso.edu"):
        assert refused in page.text
    assert "outside the security group" in page.text
    assert "no Exchange Online mailbox" in page.text
    with approved.app_context():
        upns = sorted(c.upn for c in db.session.query(Connection))
        assert upns == [ADELE, MEGAN]
        assert db.session.query(SyncJob).count() == 2
        assert all(c.token_cache_encrypted is None for c in db.session.query(Connection))
    names = [c["name"] for c in standins.directory.calendars(standins.directory.user_by_upn(MEGAN))]
    assert "MyTimetable" in names


def test_adding_again_changes_nothing(approved, admin):
    admin.post("/setup/mailboxes", {"addresses": ADELE}, page="/setup/mailboxes")
    again = admin.post("/setup/mailboxes", {"addresses": ADELE}, page="/setup/mailboxes")
    assert "1 already synchronised" in again.text
    with approved.app_context():
        assert db.session.query(Connection).count() == 1


def test_a_list_can_be_uploaded(approved, admin):
    data = {"upload": (io.BytesIO(f"upn\n{ADELE}\n{MEGAN}\n".encode()), "staff.csv")}
    page = admin.client.post(
        "/setup/mailboxes",
        data={"csrf_token": admin.csrf("/setup/mailboxes"), **data},
        content_type="multipart/form-data",
    )
    assert "Added 2" in page.text and "upn" in page.text  # the header line was not an address


def test_all_members_of_the_group(approved, admin, standins):
    denied = admin.post("/setup/mailboxes/group", page="/setup/mailboxes", follow=True)
    assert "may not read the security group" in denied.text
    standins.registration.application_permissions.add("GroupMember.Read.All")
    page = admin.post("/setup/mailboxes/group", page="/setup/mailboxes")
    assert "Added 2" in page.text and "lee.gu@contoso.edu" in page.text  # Lee has no mailbox


def test_mailboxes_page_needs_an_approved_application_configuration(approved, admin):
    with approved.app_context():
        from portal.models import Configuration

        db.session.query(Configuration).one().status = "submitted"
        db.session.commit()
    assert admin.client.get("/setup/mailboxes").status_code == 404


def test_empty_form_says_what_to_do(approved, admin):
    page = admin.post("/setup/mailboxes", {"addresses": "  "}, page="/setup/mailboxes")
    assert page.status_code == 400 and "Paste the addresses" in page.text


def test_support_adds_mailboxes_from_the_console(approved):
    from portal import staff
    from tests.integration.conftest import PASSWORD, Console

    with approved.app_context():
        staff.create_staff("support@mytimetable.example", PASSWORD)
        db.session.commit()
        from portal.models import Configuration

        config_id = db.session.query(Configuration).one().id
    console = Console(approved.test_client())
    console.sign_in("support@mytimetable.example")
    done = console.post(
        f"/support/configurations/{config_id}/mailboxes", {"addresses": f"{ADELE}\n{ALEX}"}
    )
    page = console.client.get(done.location)
    assert "Added 1" in page.text and "alex.wilber@contoso.edu (" in page.text
    assert page.text.count("adele.vance@contoso.edu") >= 1


def test_the_paste_form_after_adding_the_group_posts_to_the_paste_address(
    approved, admin, standins
):
    standins.registration.application_permissions.add("GroupMember.Read.All")
    page = admin.post("/setup/mailboxes/group", page="/setup/mailboxes")
    paste_form = page.text.split('enctype="multipart/form-data"')[0].rsplit("<form", 1)[1]
    assert 'action="/setup/mailboxes"' in paste_form
