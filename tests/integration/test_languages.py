"""English and Dutch: the language a page is in, and the switcher on every page."""

import pytest

DUTCH = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}


def test_pages_are_english_without_accept_language(client):
    page = client.get("/")
    assert '<html lang="en">' in page.text
    assert "Connect MyTimetable to Outlook" in page.text


def test_english_stays_first_when_the_browser_prefers_it(client):
    page = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9,nl;q=0.8"})
    assert '<html lang="en">' in page.text


def test_a_browser_asking_for_dutch_gets_dutch(client):
    page = client.get("/", headers=DUTCH)
    assert '<html lang="nl">' in page.text
    assert "Koppel MyTimetable aan Outlook" in page.text


def test_a_language_the_portal_does_not_have_falls_back_to_english(client):
    page = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="en">' in page.text


def test_every_page_has_the_switcher(client):
    page = client.get("/support/sign-in")
    assert 'href="/language/nl?next=/support/sign-in"' in page.text
    assert '<span lang="en" aria-current="true">English</span>' in page.text


def test_the_switcher_returns_to_the_same_page_in_the_chosen_language(client):
    switched = client.get("/language/nl?next=/support/sign-in")
    assert switched.status_code == 302
    assert switched.headers["Location"] == "/support/sign-in"
    page = client.get("/support/sign-in")
    assert '<html lang="nl">' in page.text
    assert "Ondersteuningsconsole" in page.text


def test_the_choice_wins_over_the_browser(client):
    client.get("/language/en?next=/")
    assert '<html lang="en">' in client.get("/", headers=DUTCH).text


def test_the_switcher_keeps_the_query_of_the_page(client):
    page = client.get("/support/sign-in?x=1")
    assert 'href="/language/nl?next=/support/sign-in?x%3D1"' in page.text
    switched = client.get("/language/nl?next=/support/sign-in?x%3D1")
    assert switched.headers["Location"] == "/support/sign-in?x=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "/\t/evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_the_switcher_never_sends_the_browser_off_site(client, target):
    switched = client.get("/language/nl", query_string={"next": target})
    assert switched.status_code == 302
    assert switched.headers["Location"] == "/"


def test_the_switcher_knows_only_english_and_dutch(client):
    assert client.get("/language/fr?next=/").status_code == 404


def test_a_wizard_step_is_in_dutch(client, wizard, invitation):
    wizard.open(invitation["managed"])
    page = client.get("/setup/method", headers=DUTCH)
    assert "Hoe mag MyTimetable agenda's bereiken?" in page.text
    assert "Toepassingsmachtigingen" in page.text
    assert "Stap 1 van 6" in page.text


def test_the_wizard_names_entra_as_the_dutch_portal_does(client, wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant("delegated")
    page = client.get("/setup/register", headers=DUTCH)
    for name in ("App-registraties", "Nieuwe registratie", "Certificaten en geheimen"):
        assert name in page.text
    assert "Alleen accounts in deze organisatiemap" in page.text
    assert "Beheerderstoestemming verlenen voor Example University" in page.text


def test_form_messages_are_in_dutch(client, wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant()
    client.get("/language/nl?next=/setup/tenant")
    page = wizard.post("/setup/tenant", {"tenant_id": "common", "client_id": "x"})
    assert "is niet jouw tenant" in page.text
    assert "Toepassings-id (client)" in page.text


def test_the_switcher_on_the_answer_to_a_form_returns_to_a_page_that_opens(
    client, wizard, invitation
):
    wizard.open(invitation["on_premises"])
    wizard.to_tenant()
    # a refused .pfx download answers at /setup/certificate/pfx, which only takes forms
    page = wizard.post("/setup/certificate/pfx", {"password": "short", "confirm": "other"})
    assert page.status_code == 400
    assert 'href="/language/nl?next=/setup/"' in page.text
    assert client.get("/language/nl?next=/setup/", follow_redirects=True).status_code == 200
    # a form sent to an address that also opens returns there
    refused = wizard.post("/setup/tenant", {"tenant_id": "common", "client_id": "x"})
    assert 'href="/language/en?next=/setup/tenant"' in refused.text


def test_the_end_users_start_page_is_in_dutch(client, app):
    from portal import invitations
    from portal.extensions import db

    with app.app_context():
        institution = invitations.create_institution("Contoso", "managed", "it@x.edu", "test")
        configuration = institution.configuration
        configuration.method, configuration.status = "delegated", "approved"
        db.session.commit()
    page = client.get("/connect/contoso", headers=DUTCH)
    assert "Je rooster in Outlook" in page.text
    assert "Aanmelden bij Microsoft" in page.text


def test_the_support_sign_in_is_in_dutch(client):
    page = client.get("/support/sign-in", headers=DUTCH)
    assert "Ondersteuningsconsole" in page.text
    assert "Wachtwoord" in page.text


def test_an_error_page_is_in_dutch(client):
    page = client.get("/no-such-page", headers=DUTCH)
    assert page.status_code == 404
    assert "Pagina niet gevonden" in page.text
    assert '<html lang="nl">' in page.text


def test_dates_follow_the_language(app):
    from datetime import datetime

    with app.test_request_context(headers=DUTCH):
        render = app.jinja_env.filters["long_date"]
        assert render(datetime(2026, 3, 5, 14, 0)) == "05 maart 2026"
    with app.test_request_context():
        assert app.jinja_env.filters["long_date"](datetime(2026, 3, 5)) == "05 March 2026"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "1 day from now|3 days from now|Copy &lt;b&gt;|100%|x"),
        ("nl", "over 1 dag|over 3 dagen|&lt;b&gt; kopiëren|100%|x"),
    ],
)
def test_templates_translate_plurals_variables_and_contexts(app, language, expected):
    """gettext, ngettext (with ``num``), escaped variables, ``%%`` and pgettext through the
    catalog the page's context carries."""
    from flask import render_template_string
    from flask_babel import force_locale

    page = (
        "{{ ngettext('%(num)d day from now', '%(num)d days from now', 1) }}|"
        "{{ ngettext('%(num)d day from now', '%(num)d days from now', 3) }}|"
        "{{ _('Copy %(what)s', what='<b>') }}|{{ _('100%%') }}|"
        "{{ pgettext('unknown context', 'x') }}"
    )
    with app.test_request_context(), force_locale(language):
        assert render_template_string(page) == expected
