"""The colours of a timetable's categories: support sets an institution's own in the
console (refused with a message when it cannot be read), and a mailbox that Microsoft
refused its categories says so once, on its user's status page and in the console."""

from datetime import datetime

import pytest

from portal import staff
from portal.extensions import db
from portal.models import AuditEvent, Configuration, Institution
from tests.conftest import CSRF, sign_in_staff
from tests.integration.test_end_user_status import SLUG, browser, connection
from tests.integration.test_end_user_status import portal as portal  # noqa: PLC0414 (fixture)

PASSWORD = "Tulip-Harbour-Quiet-Lantern-42"
REFUSED = datetime(2026, 7, 1, 10)
NO_COLOURS = "Your events have no colours"


@pytest.fixture
def console(portal):
    """A signed-in support client, and the path of the institution's settings."""
    with portal.app_context():
        staff.create_staff("support@example.com", PASSWORD)
        db.session.commit()
        institution_id = db.session.query(Institution).one().id
    client = portal.test_client()
    assert sign_in_staff(client, "support@example.com", PASSWORD).status_code == 302
    client.path = f"/support/institutions/{institution_id}"
    return client


def save(console, colours: str):
    token = CSRF.search(console.get(console.path).text).group(1)
    return console.post(console.path, data={"csrf_token": token, "colours": colours})


def saved(app) -> dict | None:
    with app.app_context():
        return db.session.query(Institution).one().category_colours


def show_colours(app, on: bool = True) -> None:
    with app.app_context():
        db.session.query(Configuration).one().outlook_categories = on
        db.session.commit()


def test_support_gives_categories_their_own_colours(portal, console):
    response = save(console, "Lecture = Blue\r\n\r\n  exam=preset15 \nOpen day = NONE\n")

    assert response.status_code == 302
    assert saved(portal) == {"Lecture": "preset7", "exam": "preset15", "Open day": "none"}
    page = console.get(console.path).text
    assert "Lecture = Blue\nexam = DarkRed\nOpen day = none</textarea>" in page
    with portal.app_context():
        detail = db.session.query(AuditEvent).filter_by(action="institution_settings").one()
    assert "category colours Lecture = Blue; exam = DarkRed; Open day = none" in detail.detail


def test_emptying_the_colours_goes_back_to_the_default(portal, console):
    save(console, "Lecture = Blue")

    assert save(console, "  \n").status_code == 302
    assert saved(portal) is None


def test_the_settings_page_shows_the_default_colours(console):
    page = console.get(console.path).text

    assert "The default colours" in page
    assert "<dt>Blue</dt><dd>lecture, hoorcollege, college</dd>" in page


@pytest.mark.parametrize(
    ("colours", "message"),
    [
        ("Lecture Blue", "Line 1: write the category, =, and its colour"),
        ("Lecture = Blue\n= Red", "Line 2: write the category, =, and its colour"),
        ("Lecture = Bleu", "Line 1: “Bleu” is not an Outlook colour"),
        ("Lecture = preset25", "Line 1: “preset25” is not an Outlook colour"),
        ("Lecture = Blue = Red", "Line 1: “Blue = Red” is not an Outlook colour"),
        ("Lecture = Blue\nLECTURE = Red", "Line 2: LECTURE has a colour on line 1 already."),
        ("Lec\x00ture = Blue", "Line 1: use only printable text."),
        ("Lecture = Blue\x1b[31m", "Line 1: use only printable text."),
        ("\u202eerutceL = Blue", "Line 1: use only printable text."),
        ("A" * 256 + " = Blue", "Line 1: keep the category under 255 characters."),
        (
            "<script>alert(1)</script> = <b>Blue</b>",
            "Line 1: “&lt;b&gt;Blue&lt;/b&gt;” is not an Outlook colour",
        ),
        ("\n".join(f"Course {n} = Blue" for n in range(201)), "at most 200 categories"),
        ("Lecture = Blue\n" * 2000, "Keep the colours under 20,000 characters."),
    ],
)
def test_colours_support_cannot_have_are_refused_with_a_message(portal, console, colours, message):
    response = save(console, colours)

    assert response.status_code == 400
    assert message in response.text
    assert 'aria-invalid="true"' in response.text and "<script>alert" not in response.text
    assert saved(portal) is None


def test_the_status_page_says_once_that_events_have_no_colours(portal):
    show_colours(portal)
    client = browser(portal, connection(portal, categories_refused_at=REFUSED))

    page = client.get(f"/connect/{SLUG}/status").text

    assert page.count(NO_COLOURS) == 1
    assert "MailboxSettings.ReadWrite" in page
    assert "Connected, but" not in page  # the synchronisation itself is fine


def test_no_word_of_colours_without_a_refusal(portal):
    show_colours(portal)
    client = browser(portal, connection(portal))

    assert NO_COLOURS not in client.get(f"/connect/{SLUG}/status").text


def test_no_word_of_colours_once_the_institution_shows_none(portal):
    client = browser(portal, connection(portal, categories_refused_at=REFUSED))

    assert NO_COLOURS not in client.get(f"/connect/{SLUG}/status").text


def test_the_status_page_says_it_in_dutch(portal):
    show_colours(portal)
    client = browser(portal, connection(portal, categories_refused_at=REFUSED), language="nl")

    page = client.get(f"/connect/{SLUG}/status").text

    assert "Je afspraken hebben geen kleuren" in page


def test_the_console_notes_the_refusal_beside_the_mailbox(portal, console):
    show_colours(portal)
    connection(portal, categories_refused_at=REFUSED, last_sync_outcome="ok")
    with portal.app_context():
        configuration_id = db.session.query(Configuration).one().id

    page = console.get(f"/support/configurations/{configuration_id}").text

    assert page.count("No colours since") == 1
    assert "Microsoft refused the Outlook categories (MailboxSettings.ReadWrite)" in page
