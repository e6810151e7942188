"""Support's mailboxes on a configuration's page: search by address, paging, the state of
each, removal of one or many after a confirmation and a CSV export, as the administrator's
page has them (approved application configurations only)."""

import pytest

from portal.extensions import db
from portal.models import AuditEvent, Configuration, Connection, ConnectionStatus
from tests.hostile import INJECTIONS, quoted_csv_rows
from tests.integration.test_mailboxes_page import (
    ADELE,
    FORMULA,
    MEGAN,
    add_rows,
    ids,
    own_events,
)


@pytest.fixture
def staff(group_app, staff_member):
    from tests.integration.conftest import Console

    console = Console(group_app.test_client())
    assert console.sign_in(staff_member).status_code == 302
    return console


@pytest.fixture
def detail(group_app):
    with group_app.app_context():
        return f"/support/configurations/{db.session.query(Configuration).one().id}"


def test_search_finds_mailboxes_by_part_of_their_address(group_app, staff, detail):
    page = staff.client.get(f"{detail}?q=MEGAN").text
    assert MEGAN in page and ADELE not in page
    assert "1 mailbox matches" in page and "Mailboxes (1)" in page
    assert "No mailbox matches." in staff.client.get(f"{detail}?q=nobody").text


def test_the_list_comes_in_pages_and_keeps_the_search(group_app, staff, detail):
    add_rows(group_app, [f"teacher{n:03d}@contoso.edu" for n in range(58)])  # 60 in all
    first = staff.client.get(detail).text
    assert "Page 1 of 3" in first and first.count('name="connection"') == 25
    searched = staff.client.get(f"{detail}?q=teacher05&mailboxes_page=2").text
    assert "teacher057@contoso.edu" in searched  # a page past the last gives the last
    assert ADELE not in searched and searched.count('name="connection"') == 8
    last = staff.client.get(f"{detail}?q=teacher0&mailboxes_page=3").text
    assert "Page 3 of 3" in last and "teacher057@contoso.edu" in last
    assert "q=teacher0&amp;mailboxes_page=2#mailboxes" in last


def test_each_state_shows_in_words(group_app, staff, detail):
    add_rows(group_app, ["gone@contoso.edu"], ConnectionStatus.MAILBOX_NOT_FOUND)
    add_rows(group_app, ["left@contoso.edu"], ConnectionStatus.OUTSIDE_GROUP)
    page = staff.client.get(detail).text
    for words in ("connected", "mailbox not found", "outside the group", "Not retried"):
        assert words in page


def test_removing_one_asks_first_then_takes_out_only_the_portals_events(
    group_app, staff, detail, standins
):
    portal_calendar, default = own_events(standins)
    (adele,) = ids(group_app, ADELE)
    ask = staff.post(f"{detail}/mailboxes/remove", {"only": adele})
    assert ask.status_code == 200 and "Remove 1 mailbox?" in ask.text
    assert ADELE in ask.text and MEGAN not in ask.text and "cannot be undone" in ask.text
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2
    done = staff.client.post(
        f"{detail}/mailboxes/remove",
        data={"csrf_token": staff.token(detail), "connection": adele, "confirmed": "yes"},
        follow_redirects=True,
    )
    assert "Removed 1 mailbox" in done.text
    directory = standins.directory
    assert [e["subject"] for e in directory.events(ADELE, portal_calendar)] == ["Dentist"]
    assert [e["subject"] for e in directory.events(ADELE, default)] == ["Lunch with Megan"]
    assert len(directory.events(MEGAN)) == 2
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(upn=ADELE).one().status == "disconnected"
        audit = db.session.query(AuditEvent).filter_by(action="mailbox_removed").one()
        assert audit.actor == "support@mytimetable.example"


def test_removing_many_with_the_calendar_leaves_the_owners_own_events(
    group_app, staff, detail, standins
):
    _portal_calendar, default = own_events(standins)
    chosen = ids(group_app, ADELE, MEGAN)
    ask = staff.post(f"{detail}/mailboxes/remove", {"connection": chosen})
    assert "Remove 2 mailboxes?" in ask.text
    staff.confirm(f"{detail}/mailboxes/remove", {"connection": chosen, "remove": "calendar"})
    directory = standins.directory
    for upn in (ADELE, MEGAN):
        names = [c["name"] for c in directory.calendars(directory.user_by_upn(upn))]
        assert "MyTimetable" not in names
    assert [e["subject"] for e in directory.events(ADELE, default)] == ["Lunch with Megan"]
    with group_app.app_context():
        assert {c.status for c in db.session.query(Connection)} == {"disconnected"}
        actors = {a.actor for a in db.session.query(AuditEvent).filter_by(action="mailbox_removed")}
        assert actors == {"support@mytimetable.example"}


@pytest.mark.parametrize("data", [{}, {"connection": "abc"}, {"only": "99999999999999999999"}])
def test_a_removal_without_a_valid_choice_says_so(group_app, staff, detail, data):
    page = staff.post(f"{detail}/mailboxes/remove", data)
    assert page.status_code == 400
    assert "Choose at least one mailbox" in page.text or "Choose the mailboxes" in page.text
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2


def test_a_removal_without_the_csrf_token_is_refused(group_app, staff, detail):
    chosen = ids(group_app, ADELE, MEGAN)
    forged = staff.client.post(
        f"{detail}/mailboxes/remove", data={"connection": chosen, "confirmed": "yes"}
    )
    assert forged.status_code == 400
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2


def test_the_csv_export_quotes_and_defuses_hostile_addresses(group_app, staff, detail):
    values = [v.replace("\x00", "")[:300] for v in INJECTIONS if v.strip()]
    add_rows(group_app, values)
    response = staff.client.get(f"{detail}/mailboxes.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="mailboxes.csv"' in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    header, *rows = quoted_csv_rows(response.get_data(as_text=True))
    assert header[:2] == ["address", "state"] and len(rows) == len(values) + 2
    originals = {v.replace("'", "") for v in values} | {ADELE, MEGAN}
    for row in rows:
        assert not FORMULA.search(row[0]), row[0]
        assert row[0].replace("'", "") in originals
    searched = staff.client.get(f"{detail}/mailboxes.csv?q=adele").get_data(as_text=True)
    assert ADELE in searched and MEGAN not in searched
    with group_app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="exported_mailboxes").count() == 2


@pytest.mark.parametrize(
    "change", [{"method": "delegated"}, {"status": "submitted"}], ids=["delegated", "unapproved"]
)
def test_other_configurations_cannot_remove_or_export(group_app, staff, detail, change):
    with group_app.app_context():
        configuration = db.session.query(Configuration).one()
        for name, value in change.items():
            setattr(configuration, name, value)
        db.session.commit()
    page = staff.client.get(detail).text
    assert 'name="connection"' not in page and "mailboxes.csv" not in page
    assert staff.client.get(f"{detail}/mailboxes.csv").status_code == 404
    chosen = ids(group_app, ADELE)
    refused = staff.confirm(f"{detail}/mailboxes/remove", {"connection": chosen})
    assert refused.status_code == 404
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2


def test_the_page_and_the_confirmation_speak_dutch(group_app, staff, detail):
    nl = {"Accept-Language": "nl"}
    page = staff.client.get(f"{detail}?q=contoso", headers=nl).text
    for words in ("Zoeken op adres", "2 mailboxen passen bij", "Geselecteerde verwijderen"):
        assert words in page
    ask = staff.client.post(
        f"{detail}/mailboxes/remove",
        data={"csrf_token": staff.token(detail), "connection": ids(group_app, ADELE)},
        headers=nl,
    ).text
    assert "1 mailbox verwijderen?" in ask and "Annuleren" in ask
