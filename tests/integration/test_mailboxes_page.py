"""The administrator's mailboxes page: search by address, paging, the state of each in
words, removal of one or many after a confirmation, and a CSV export."""

import re
from datetime import datetime

import pytest

from portal import invitations
from portal.extensions import db
from portal.models import AuditEvent, Configuration, Connection, ConnectionStatus, SyncItem
from tests.hostile import INJECTIONS, quoted_csv_rows
from tests.integration.conftest import add_own_events, administrator

ADELE, MEGAN = "adele.vance@contoso.edu", "megan.bowen@contoso.edu"
FORMULA = re.compile(r"""(^|[;,])[ "]*[=+\-@\t\r]""")


@pytest.fixture
def admin(group_app):
    admin = administrator(group_app)
    admin.csrf("/setup/mailboxes")
    return admin


def add_rows(app, upns, status=ConnectionStatus.CONNECTED):
    """Connections stored as they would be (no Graph needed to list or export them)."""
    with app.app_context():
        configuration = db.session.query(Configuration).one()
        for upn in upns:
            db.session.add(Connection(configuration=configuration, upn=upn, status=status))
        db.session.commit()


def ids(app, *upns) -> list[str]:
    with app.app_context():
        rows = db.session.query(Connection).filter(Connection.upn.in_(upns))
        return [str(c.id) for c in rows]


def own_events(standins):
    """An event of Adele's own in the portal's calendar and one in her default calendar;
    returns both calendars' IDs."""
    directory = standins.directory
    adele = directory.user_by_upn(ADELE)
    portal_calendar = next(
        c["id"] for c in directory.calendars(adele) if c["name"] == "MyTimetable"
    )
    return portal_calendar, add_own_events(directory, ADELE, portal_calendar)


def test_search_finds_mailboxes_by_part_of_their_address(group_app, admin):
    add_rows(group_app, ["joe_100%@contoso.edu"])
    page = admin.client.get("/setup/mailboxes?q=MEGAN")
    assert MEGAN in page.text and ADELE not in page.text
    assert "1 mailbox matches" in page.text
    literal = admin.client.get("/setup/mailboxes?q=_100%25")  # % and _ are not wildcards
    assert "joe_100%@contoso.edu" in literal.text and MEGAN not in literal.text
    none = admin.client.get("/setup/mailboxes?q=nobody")
    assert "No mailbox matches." in none.text


def test_the_list_comes_in_pages_of_fifty(group_app, admin):
    add_rows(group_app, [f"teacher{n:03d}@contoso.edu" for n in range(118)])  # 120 in all
    first = admin.client.get("/setup/mailboxes")
    assert "Synchronised mailboxes (120)" in first.text and "Page 1 of 3" in first.text
    assert first.text.count('name="connection"') == 50
    last = admin.client.get("/setup/mailboxes?page=3")
    assert last.text.count('name="connection"') == 20 and "teacher117@contoso.edu" in last.text
    beyond = admin.client.get("/setup/mailboxes?page=99")
    assert "Page 3 of 3" in beyond.text
    searched = admin.client.get("/setup/mailboxes?q=teacher0&page=2")
    assert "Page 2 of 2" in searched.text and "page=1&amp;q=teacher0" in searched.text


def test_each_state_shows_in_words(group_app, admin):
    add_rows(group_app, ["gone@contoso.edu"], ConnectionStatus.MAILBOX_NOT_FOUND)
    add_rows(group_app, ["left@contoso.edu"], ConnectionStatus.OUTSIDE_GROUP)
    page = admin.client.get("/setup/mailboxes").text
    for words in ("connected", "mailbox not found", "outside the group", "Not retried"):
        assert words in page
    dutch = admin.client.get("/setup/mailboxes", headers={"Accept-Language": "nl"}).text
    for words in ("gekoppeld", "mailbox niet gevonden", "buiten de groep"):
        assert words in dutch


def test_a_mailbox_refused_its_colours_says_so_beside_it(group_app, admin):
    with group_app.app_context():
        configuration = db.session.query(Configuration).one()
        configuration.outlook_categories = True
        adele = db.session.query(Connection).filter_by(upn=ADELE).one()
        adele.categories_refused_at = datetime(2026, 7, 1, 10)
        db.session.commit()

    page = admin.client.get("/setup/mailboxes").text

    assert page.count("Without colours: Microsoft refused the Outlook categories") == 1


def test_removing_asks_first_and_a_post_without_the_confirmation_changes_nothing(
    group_app,
    admin,
    standins,
):
    (adele,) = ids(group_app, ADELE)
    ask = admin.post("/setup/mailboxes/remove", {"only": adele}, page="/setup/mailboxes")
    assert ask.status_code == 200 and "Remove 1 mailbox?" in ask.text
    assert ADELE in ask.text and MEGAN not in ask.text
    assert "Only the events the portal wrote" in ask.text and "cannot be undone" in ask.text
    # The choice alone, without the confirmation the page adds, removes nothing either.
    again = admin.post(
        "/setup/mailboxes/remove",
        {"connection": adele, "remove": "calendar"},
        page="/setup/mailboxes",
    )
    assert again.status_code == 200 and "Remove 1 mailbox?" in again.text
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2
        assert db.session.query(AuditEvent).filter_by(action="mailbox_removed").count() == 0
    forged = admin.client.post(
        "/setup/mailboxes/remove", data={"connection": adele, "confirmed": "yes"}
    )
    assert forged.status_code == 400  # no CSRF token
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2


def test_removing_one_takes_out_only_the_events_the_portal_wrote(group_app, admin, standins):
    portal_calendar, default = own_events(standins)
    (adele,) = ids(group_app, ADELE)
    done = admin.post(
        "/setup/mailboxes/remove",
        {"connection": adele, "remove": "events", "confirmed": "yes"},
        page="/setup/mailboxes",
        follow=True,
    )
    assert "Removed 1 mailbox" in done.text
    directory = standins.directory
    assert [e["subject"] for e in directory.events(ADELE, portal_calendar)] == ["Dentist"]
    assert [e["subject"] for e in directory.events(ADELE, default)] == ["Lunch with Megan"]
    assert len(directory.events(MEGAN)) == 2  # Megan's lessons: not chosen, not touched
    with group_app.app_context():
        connection = db.session.query(Connection).filter_by(upn=ADELE).one()
        assert connection.status == "disconnected"
        assert db.session.query(SyncItem).filter_by(connection_id=connection.id).count() == 0
        audit = db.session.query(AuditEvent).filter_by(action="mailbox_removed").one()
        assert audit.detail == f"{ADELE}: events (3 events)"


def test_removing_many_with_the_calendar_leaves_the_owners_own_events(
    group_app,
    admin,
    standins,
):
    portal_calendar, default = own_events(standins)
    chosen = ids(group_app, ADELE, MEGAN)
    admin.post(
        "/setup/mailboxes/remove",
        {"connection": chosen, "remove": "calendar", "confirmed": "yes"},
        page="/setup/mailboxes",
    )
    directory = standins.directory
    for upn in (ADELE, MEGAN):
        names = [c["name"] for c in directory.calendars(directory.user_by_upn(upn))]
        assert "MyTimetable" not in names
    assert [e["subject"] for e in directory.events(ADELE, default)] == ["Lunch with Megan"]
    with group_app.app_context():
        assert {c.status for c in db.session.query(Connection)} == {"disconnected"}
        assert db.session.query(AuditEvent).filter_by(action="mailbox_removed").count() == 2
    page = admin.client.get("/setup/mailboxes")
    assert 'name="connection"' not in page.text  # ended ones cannot be chosen again


def test_a_mailbox_out_of_reach_can_be_removed(group_app, admin, standins):
    standins.registration.policy_mailboxes.discard(ADELE)
    with group_app.app_context():
        connection = db.session.query(Connection).filter_by(upn=ADELE).one()
        connection.status = ConnectionStatus.OUTSIDE_GROUP
        db.session.commit()
    (adele,) = ids(group_app, ADELE)
    done = admin.post(
        "/setup/mailboxes/remove",
        {"connection": adele, "confirmed": "yes"},
        page="/setup/mailboxes",
        follow=True,
    )
    assert "Removed 1 mailbox" in done.text and "nothing was taken out of it" in done.text


@pytest.mark.parametrize("data", [{}, {"connection": "abc"}, {"only": "99999999999999999999"}])
def test_a_removal_without_a_valid_choice_says_so(group_app, admin, data):
    page = admin.post("/setup/mailboxes/remove", data, page="/setup/mailboxes")
    assert page.status_code == 400
    assert "Choose at least one mailbox" in page.text or "Choose the mailboxes" in page.text
    with group_app.app_context():
        assert db.session.query(Connection).filter_by(status="connected").count() == 2


def test_another_institutions_mailbox_cannot_be_removed(group_app, admin, configure):
    with group_app.app_context():
        institution = invitations.create_institution("Fabrikam", "managed", "it@f.edu", "t")
        other = institution.configuration
        db.session.add(Connection(configuration=other, upn="x@fabrikam.edu"))
        db.session.commit()
    (theirs,) = ids(group_app, "x@fabrikam.edu")
    page = admin.post(
        "/setup/mailboxes/remove",
        {"connection": theirs, "confirmed": "yes"},
        page="/setup/mailboxes",
    )
    assert page.status_code == 400
    with group_app.app_context():
        assert (
            db.session.query(Connection).filter_by(upn="x@fabrikam.edu").one().status == "connected"
        )


def test_the_csv_export_quotes_and_defuses_hostile_addresses(group_app, admin):
    values = [v.replace("\x00", "")[:300] for v in INJECTIONS if v.strip()]
    add_rows(group_app, values)
    response = admin.client.get("/setup/mailboxes.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="mailboxes.csv"' in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    header, *rows = quoted_csv_rows(text)
    assert header[:2] == ["address", "state"]
    assert len(rows) == len(values) + 2
    originals = {v.replace("'", "") for v in values} | {ADELE, MEGAN}
    for row in rows:
        cell = row[0]
        assert not FORMULA.search(cell), cell
        assert cell.replace("'", "") in originals


def test_the_csv_export_follows_the_search(group_app, admin):
    text = admin.client.get("/setup/mailboxes.csv?q=adele").get_data(as_text=True)
    assert ADELE in text and MEGAN not in text


def test_the_page_and_the_confirmation_speak_dutch(group_app, admin):
    nl = {"Accept-Language": "nl"}
    add_rows(group_app, ["gone@contoso.edu"], ConnectionStatus.MAILBOX_NOT_FOUND)
    page = admin.client.get("/setup/mailboxes?q=contoso", headers=nl).text
    for words in ("Zoeken op adres", "3 mailboxen passen bij", "Geselecteerde verwijderen"):
        assert words in page
    assert "Wordt niet opnieuw geprobeerd" in page and "Alles tonen" in page
    chosen = ids(group_app, ADELE, MEGAN)
    ask = admin.client.post(
        "/setup/mailboxes/remove",
        data={"csrf_token": admin.token, "connection": chosen},
        headers=nl,
    ).text
    for words in (
        "2 mailboxen verwijderen?",
        "Wat uit elke mailbox verdwijnt",
        "Alleen de afspraken die de portal schreef",
        "De MyTimetable-agenda, met alles wat erin staat",
        "De portal stopt met het synchroniseren",
        "Dit kun je niet ongedaan maken",
        "Annuleren",
    ):
        assert words in ask, words
    done = admin.client.post(
        "/setup/mailboxes/remove",
        data={"csrf_token": admin.token, "connection": chosen[:1], "confirmed": "yes"},
        headers=nl,
        follow_redirects=True,
    ).text
    assert "1 mailbox verwijderd" in done
    empty = admin.client.post(
        "/setup/mailboxes/remove", data={"csrf_token": admin.token}, headers=nl
    ).text
    assert "Kies minstens één mailbox om te verwijderen." in empty
