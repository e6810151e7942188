"""A page view only reads the database; templates translate in the request's language
(``force_locale`` too) and escape what they put in; warming a process compiles every
template."""

from contextlib import contextmanager

import pytest
from flask import render_template_string
from flask_babel import force_locale
from sqlalchemy import event

from portal import warm_up
from portal.extensions import db
from portal.i18n import lazy_gettext

DUTCH = {"Accept-Language": "nl"}


@contextmanager
def statements(app):
    """The SQL statements ``app`` sends while the block runs."""
    sent = []

    def record(conn, cursor, statement, *args):
        sent.append(statement.split()[0].upper())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    "page", ["/setup/method", "/setup/certificate", "/setup/register", "/setup/tenant"]
)
def test_a_wizard_page_view_writes_nothing(app, wizard, invitation, page):
    wizard.open(invitation["managed"])
    wizard.to_tenant()
    wizard.client.get(page)  # the first view may add the CSRF token to the session
    with statements(app) as sent:
        assert wizard.client.get(page).status_code == 200
    assert sent and set(sent) == {"SELECT"}


def test_templates_follow_force_locale_within_a_request(app):
    with app.test_request_context("/", headers=DUTCH):
        assert render_template_string("{{ _('Method') }}") == "Methode"
        with force_locale("en"):
            assert render_template_string("{{ _('Method') }}") == "Method"
            assert str(lazy_gettext("Method")) == "Method"
        assert render_template_string("{{ gettext('Method') }}") == "Methode"
        assert str(lazy_gettext("Method")) == "Methode"


def test_template_text_is_escaped_and_formatted_as_jinja_does(app):
    with app.test_request_context("/"):
        page = render_template_string("{{ _('Copy %(what)s', what='<b>') }}")
    assert page == "Copy &lt;b&gt;"


def test_warming_up_compiles_every_template(app):
    warm_up(app)
    compiled = {name for (_, name) in app.jinja_env.cache}
    assert set(app.jinja_env.list_templates(extensions=["html"])) <= compiled


def test_lazy_text_is_escaped_when_a_page_shows_it(app):
    with app.test_request_context("/"):
        page = render_template_string("{{ text }}", text=lazy_gettext("<b>"))
    assert page == "&lt;b&gt;"
