"""The console's API keys page: support makes a key (shown once, kept as a hash), sees when
each was last used, and revokes one; each is in the audit trail."""

import hashlib
import re

import pytest

from portal import invitations
from portal.extensions import db
from portal.models import ApiKey, AuditEvent, Institution
from tests.integration.conftest import Console

KEY = re.compile(r"mtp_[A-Za-z0-9_-]{40,}")


@pytest.fixture
def institution_id(app):
    with app.app_context():
        institution = invitations.create_institution("Contoso", "managed", "it@contoso.edu", "t")
        configuration = institution.configuration
        configuration.method, configuration.status = "application", "approved"
        db.session.commit()
        return institution.id


@pytest.fixture
def page(institution_id):
    return f"/support/institutions/{institution_id}/api-keys"


def make_key(console: Console, page: str, name="MyTimetable production") -> str:
    made = console.post(page, {"name": name})
    assert made.status_code == 302 and made.location.endswith(page)
    shown = console.client.get(page).text
    return KEY.search(shown).group(0)


def test_a_new_key_is_shown_once_and_kept_only_as_its_hash(app, console, page):
    key = make_key(console, page)
    assert KEY.search(console.client.get(page).text) is None  # shown only that once
    with app.app_context():
        row = db.session.query(ApiKey).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.name == "MyTimetable production" and row.created_by.startswith("support@")
        assert key not in str(db.session.execute(db.text("SELECT * FROM api_key")).all())
        audit = db.session.query(AuditEvent).filter_by(action="api_key_created").one()
        assert row.prefix in audit.detail and key not in audit.detail
    listed = console.client.get(page).text
    assert f"{row.prefix}…" in listed and "Never" in listed


def test_the_key_works_on_the_api_and_its_last_use_shows(app, console, page):
    key = make_key(console, page)
    answer = app.test_client().get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    assert "Never" not in console.client.get(page).text


def test_a_revoked_key_stops_working_at_once(app, console, page):
    key = make_key(console, page)
    with app.app_context():
        key_id = db.session.query(ApiKey).one().id
    revoked = console.post(f"/support/api-keys/{key_id}/revoke")
    assert revoked.status_code == 302
    listed = console.client.get(page).text
    assert "no longer works" in listed and "Revoked" in listed
    answer = app.test_client().get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 401
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="api_key_revoked").count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Name the key"), ("x" * 101, "at most 100"), ("two\nlines", "one line")],
)
def test_a_key_needs_a_name_on_one_line(app, console, page, name, message):
    answer = console.post(page, {"name": name})
    assert answer.status_code == 400 and message in answer.text
    with app.app_context():
        assert db.session.query(ApiKey).count() == 0


def test_a_name_is_shown_as_text(console, page):
    make_key(console, page, name="<script>alert(1)</script>")
    text = console.client.get(page).text
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text


def test_the_institutions_page_links_to_the_keys(console, page):
    assert page in console.client.get("/support/institutions").text


def test_keys_need_a_signed_in_staff_member(app, page, institution_id):
    anonymous = app.test_client()
    assert anonymous.get(page).location.endswith("/support/sign-in")
    assert anonymous.post(page, data={"name": "x"}).status_code in (302, 400)
    with app.app_context():
        assert db.session.query(ApiKey).count() == 0
        assert db.session.get(Institution, institution_id) is not None


def test_the_page_warns_when_the_api_cannot_answer_yet(app, console, page):
    with app.app_context():
        db.session.query(Institution).one().configuration.method = "delegated"
        db.session.commit()
    assert "The API answers only once" in console.client.get(page).text
