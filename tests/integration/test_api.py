"""The provisioning API: MyTimetable adds and removes mailboxes with an institution's key;
Microsoft's refusals, the key's scope, the rate limit and the document it answers by."""

import hashlib

import pytest

from portal import api_keys, invitations, provisioning
from portal.extensions import db
from portal.models import (
    ApiKey,
    AuditEvent,
    Configuration,
    Connection,
    ConnectionStatus,
    Institution,
    SyncItem,
    SyncJob,
)
from portal.sync import jobs
from tests.integration.conftest import add_own_events
from tests.integration.test_sync import ics, lessons

ADELE, MEGAN, ALEX = "adele.vance@contoso.edu", "megan.bowen@contoso.edu", "alex.wilber@contoso.edu"
LEE, NOBODY = "lee.gu@contoso.edu", "nobody@contoso.edu"
PROBLEM = "application/problem+json"


def make_key(app, institution_name="Contoso") -> str:
    with app.app_context():
        institution = db.session.query(Institution).filter_by(name=institution_name).one()
        _, key = api_keys.create(institution, "MyTimetable", "test")
        db.session.commit()
    return key


@pytest.fixture
def make_api(make_app, standins, configure, feed_server):
    """An approved application configuration limited to the demo group, its feed on the
    test feed server; returns (app, client with a key's header)."""

    def make(**settings):
        app = make_app(**standins.settings(), **settings)
        configure(
            app,
            security_group_email="mytimetable@contoso.edu",
            group_scope_method="access_policy",
            feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
        )
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key(app)}"
        return app, client

    return make


@pytest.fixture
def api(make_api):
    return make_api()


def problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status and body["title"]
    if kind:
        assert body["type"].endswith(f"/api/v1/problems/{kind}")
    return body


def test_put_provisions_once_201_then_200(api, standins):
    app, client = api
    first = client.put(f"/api/v1/mailboxes/{ADELE}")
    assert first.status_code == 201
    assert first.json["state"] == "connected" and first.json["calendar"] == "MyTimetable"
    assert first.json["sync_queued"] is True
    again = client.put(f"/api/v1/mailboxes/{ADELE.upper()}")
    assert again.status_code == 200 and again.json["address"] == ADELE
    with app.app_context():
        assert db.session.query(Connection).count() == 1
        assert db.session.query(SyncJob).count() == 1
        assert db.session.query(AuditEvent).filter_by(action="mailboxes_provisioned").count() == 2
    names = [c["name"] for c in standins.directory.calendars(standins.directory.user_by_upn(ADELE))]
    assert names.count("MyTimetable") == 1


@pytest.mark.parametrize(
    ("address", "reason", "code"),
    [
        (ALEX, "outside_group", "ErrorAccessDenied"),
        (LEE, "no_mailbox", "MailboxNotEnabledForRESTAPI"),
        (NOBODY, "unknown_user", "ErrorInvalidUser"),
    ],
)
def test_a_mailbox_microsoft_refuses_is_answered_with_the_reason(api, address, reason, code):
    app, client = api
    body = problem(client.put(f"/api/v1/mailboxes/{address}"), 422, "mailbox-refused")
    assert (body["address"], body["reason"], body["microsoft_code"]) == (address, reason, code)
    assert body["detail"]
    with app.app_context():
        assert db.session.query(Connection).count() == 0


def test_a_batch_answers_each_address(api):
    _, client = api
    client.put(f"/api/v1/mailboxes/{MEGAN}")
    answer = client.post(
        "/api/v1/mailboxes:batch",
        json={"add": [ADELE, MEGAN, ALEX, LEE, NOBODY, "not an address"], "remove": [NOBODY]},
    )
    assert answer.status_code == 200
    outcomes = [
        (r["address"], r["action"], r["outcome"], r["reason"]) for r in answer.json["results"]
    ]
    assert outcomes == [
        (ADELE, "add", "added", None),
        (MEGAN, "add", "already", None),
        (ALEX, "add", "refused", "outside_group"),
        (LEE, "add", "refused", "no_mailbox"),
        (NOBODY, "add", "refused", "unknown_user"),
        ("not an address", "add", "invalid", None),
        (NOBODY, "remove", "not_found", None),
    ]


def test_a_batch_of_1001_addresses_is_refused_whole(api):
    app, client = api
    addresses = [f"user{n}@contoso.edu" for n in range(1001)]
    body = problem(
        client.post("/api/v1/mailboxes:batch", json={"add": addresses}), 422, "invalid-request"
    )
    assert "1000" in str(body["errors"])
    with app.app_context():
        assert db.session.query(Connection).count() == 0


@pytest.mark.parametrize(
    "address", ["not-an-address", "a@b", "adele vance@contoso.edu", "ädele@contoso.edu", "x" * 400]
)
def test_a_malformed_address_is_a_400_problem(api, address):
    _, client = api
    for method in ("get", "put", "delete"):
        body = problem(
            getattr(client, method)(f"/api/v1/mailboxes/{address}"), 400, "invalid-address"
        )
        assert body["instance"].startswith("/api/v1/mailboxes/")
    problem(client.post(f"/api/v1/mailboxes/{address}/sync"), 400, "invalid-address")


def test_a_key_of_one_institution_cannot_reach_anothers_mailboxes(api):
    app, client = api
    with app.app_context():
        other = invitations.create_institution("Fabrikam", "managed", "it@fabrikam.com", "t")
        configuration = other.configuration
        configuration.method, configuration.status = "application", "approved"
        db.session.add(
            Connection(configuration=configuration, upn="jo@fabrikam.com", calendar_id="c1")
        )
        db.session.commit()
    other_key = make_key(app, "Fabrikam")
    problem(client.get("/api/v1/mailboxes/jo@fabrikam.com"), 404, "mailbox-not-found")
    problem(client.delete("/api/v1/mailboxes/jo@fabrikam.com"), 404, "mailbox-not-found")
    problem(client.post("/api/v1/mailboxes/jo@fabrikam.com/sync"), 404, "mailbox-not-found")
    answer = client.post("/api/v1/mailboxes:batch", json={"remove": ["jo@fabrikam.com"]})
    assert answer.json["results"][0]["outcome"] == "not_found"
    assert client.get("/api/v1/mailboxes").json["total"] == 0
    theirs = app.test_client().get(
        "/api/v1/mailboxes", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert [m["address"] for m in theirs.json["items"]] == ["jo@fabrikam.com"]
    with app.app_context():
        assert db.session.query(Connection).one().status == ConnectionStatus.CONNECTED


def test_a_revoked_key_no_longer_works(api):
    app, client = api
    assert client.get("/api/v1/mailboxes").status_code == 200
    with app.app_context():
        api_keys.revoke(db.session.query(ApiKey).one(), "test")
        db.session.commit()
    body = problem(client.get("/api/v1/mailboxes"), 401, "unauthorized")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer mtp_unknown", "Basic dXNlcjpwYXNz", "mtp_x"]
)
def test_no_valid_key_is_a_401_problem(api, authorization):
    app, _ = api
    headers = {"Authorization": authorization} if authorization else {}
    response = app.test_client().get("/api/v1/mailboxes", headers=headers)
    problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Set-Cookie" not in response.headers


def test_a_delegated_configuration_has_no_provisioning(make_app, standins, configure):
    app = make_app(**standins.settings())
    configure(app, method="delegated")
    key = make_key(app)
    client = app.test_client()
    response = client.put(f"/api/v1/mailboxes/{ADELE}", headers={"Authorization": f"Bearer {key}"})
    problem(response, 409, "not-application-permissions")
    with app.app_context():
        assert db.session.query(Connection).count() == 0


def test_a_configuration_not_approved_has_no_provisioning(make_app, standins, configure):
    app = make_app(**standins.settings())
    configure(app, status="changes_requested")
    key = make_key(app)
    response = app.test_client().get(
        "/api/v1/mailboxes", headers={"Authorization": f"Bearer {key}"}
    )
    problem(response, 409, "configuration-not-approved")


def test_too_many_requests_are_a_429_problem_with_retry_after(make_api):
    app, client = make_api(API_RATE_LIMIT="2 per minute")
    assert client.get("/api/v1/mailboxes").status_code == 200
    assert client.get("/api/v1/mailboxes").status_code == 200
    limited = client.get("/api/v1/mailboxes")
    problem(limited, 429, "rate-limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Per key: another key of the same institution is not held back.
    other = app.test_client().get(
        "/api/v1/mailboxes", headers={"Authorization": f"Bearer {make_key(app)}"}
    )
    assert other.status_code == 200


def _sync_adele(app, client, feed_server, standins):
    """Provision Adele, write three lessons, and put two events of her own beside them:
    one in the portal's calendar, one in her own calendar. Returns the portal's calendar ID."""
    feed_server.calendars[ADELE] = ics(*lessons(3))
    assert client.put(f"/api/v1/mailboxes/{ADELE}").status_code == 201
    with app.app_context():
        assert jobs.run_waiting(sleep=lambda s: None) == 1
        connection = db.session.query(Connection).one()
        assert connection.event_count == 3
        calendar_id = connection.calendar_id
    default = add_own_events(standins.directory, ADELE, calendar_id)
    return calendar_id, default


def test_delete_removes_only_the_events_the_portal_wrote(api, feed_server, standins):
    app, client = api
    calendar_id, default = _sync_adele(app, client, feed_server, standins)
    answer = client.delete(f"/api/v1/mailboxes/{ADELE}")
    assert answer.status_code == 200
    assert answer.json == {
        "address": ADELE,
        "state": "disconnected",
        "removed": "events",
        "events_removed": 3,
        "microsoft_code": None,
    }
    directory = standins.directory
    assert [e["subject"] for e in directory.events(ADELE, calendar_id)] == ["Dentist"]
    assert [e["subject"] for e in directory.events(ADELE, default)] == ["Lunch with Megan"]
    with app.app_context():
        assert db.session.query(SyncItem).count() == 0
        assert db.session.query(AuditEvent).filter_by(action="mailbox_removed").count() == 1
    assert client.get(f"/api/v1/mailboxes/{ADELE}").json["state"] == "disconnected"
    assert client.get("/api/v1/mailboxes?state=connected").json["total"] == 0
    # Provisioned again, it synchronises again in the calendar it kept.
    assert client.put(f"/api/v1/mailboxes/{ADELE}").status_code == 201


def test_delete_with_remove_calendar_removes_the_portals_calendar(api, feed_server, standins):
    app, client = api
    calendar_id, default = _sync_adele(app, client, feed_server, standins)
    answer = client.delete(f"/api/v1/mailboxes/{ADELE}?remove_calendar=true")
    assert answer.status_code == 200 and answer.json["removed"] == "calendar"
    directory = standins.directory
    adele = directory.user_by_upn(ADELE)
    assert directory.calendar(adele, calendar_id) is None
    assert [e["subject"] for e in directory.events(ADELE, default)] == ["Lunch with Megan"]


def test_delete_of_a_mailbox_microsoft_refuses_now_still_ends_its_sync(api, standins):
    app, client = api
    assert client.put(f"/api/v1/mailboxes/{ADELE}").status_code == 201
    standins.registration.policy_mailboxes.discard(ADELE)  # Adele left the group
    answer = client.delete(f"/api/v1/mailboxes/{ADELE}")
    assert answer.status_code == 200
    assert (answer.json["removed"], answer.json["microsoft_code"]) == (
        "nothing",
        "ErrorAccessDenied",
    )
    with app.app_context():
        assert db.session.query(Connection).one().status == ConnectionStatus.DISCONNECTED


def test_get_shows_state_counts_and_the_last_problem(api, feed_server, standins):
    app, client = api
    _sync_adele(app, client, feed_server, standins)
    shown = client.get(f"/api/v1/mailboxes/{ADELE}").json
    assert shown["state"] == "connected" and shown["events"] == 3
    assert shown["last_run"]["created"] == 3 and shown["problem"] is None
    assert shown["last_sync_outcome"] == "ok" and shown["last_sync_at"]
    with app.app_context():
        connection = db.session.query(Connection).one()
        connection.last_error = (
            "MailboxNotEnabledForRESTAPI: This account has no Exchange Online mailbox."
        )
        db.session.commit()
    assert client.get(f"/api/v1/mailboxes/{ADELE}").json["problem"] == {
        "message": "This account has no Exchange Online mailbox.",
        "microsoft_code": "MailboxNotEnabledForRESTAPI",
    }


def test_sync_queues_a_job_once(api):
    app, client = api
    client.put(f"/api/v1/mailboxes/{ADELE}")
    with app.app_context():
        jobs.run_waiting(sleep=lambda s: None)
    first = client.post(f"/api/v1/mailboxes/{ADELE}/sync")
    assert first.status_code == 202 and first.json["address"] == ADELE
    assert client.post(f"/api/v1/mailboxes/{ADELE}/sync").status_code == 202
    with app.app_context():
        assert db.session.query(SyncJob).filter(SyncJob.started_at.is_(None)).count() == 1
    client.delete(f"/api/v1/mailboxes/{ADELE}")
    problem(client.post(f"/api/v1/mailboxes/{ADELE}/sync"), 409, "mailbox-not-synchronised")


def test_the_list_is_paged_and_filtered(api):
    app, client = api
    with app.app_context():
        configuration = db.session.query(Configuration).one()
        for n in range(5):
            db.session.add(Connection(configuration=configuration, upn=f"u{n}@contoso.edu"))
        db.session.add(
            Connection(configuration=configuration, upn="gone@contoso.edu", status="disconnected")
        )
        db.session.commit()
    page = client.get("/api/v1/mailboxes?per_page=2&page=2&state=connected").json
    assert (page["total"], page["page"], page["per_page"]) == (5, 2, 2)
    assert [m["address"] for m in page["items"]] == ["u2@contoso.edu", "u3@contoso.edu"]
    problem(client.get("/api/v1/mailboxes?state=asleep"), 422, "invalid-request")


def test_the_key_is_used_noted_and_the_api_makes_no_session(api):
    app, client = api
    response = client.get("/api/v1/mailboxes")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        assert db.session.query(ApiKey).one().last_used_at is not None


def test_a_key_is_stored_only_as_its_hash(app):
    with app.app_context():
        institution = invitations.create_institution("Contoso", "managed", "it@contoso.edu", "t")
        row, key = api_keys.create(institution, "MyTimetable", "test")
        db.session.commit()
        assert key.startswith("mtp_") and len(key) > 40
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.prefix == key[:10] and key not in repr(
            db.session.execute(db.text("SELECT * FROM api_key")).all()
        )
        assert api_keys.find(key) == row and api_keys.find(key + "x") is None


def test_unknown_api_paths_and_methods_are_problems_too(api):
    _, client = api
    problem(client.get("/api/v1/nothing-here"), 404)
    problem(client.patch(f"/api/v1/mailboxes/{ADELE}"), 405)
    problem(client.get("/api/v1/problems/no-such-problem"), 404)
    described = client.get("/api/v1/problems/mailbox-refused", headers={"Authorization": ""})
    assert described.status_code == 200 and "outside_group" in described.json["description"]


def test_provisioning_refusal_reasons_follow_the_group_setting():
    limited = Configuration(security_group_email="g@contoso.edu")
    everyone = Configuration()
    assert provisioning.refusal(limited, "ErrorAccessDenied") == "outside_group"
    assert provisioning.refusal(everyone, "ErrorAccessDenied") == "access_denied"
    assert provisioning.refusal(everyone, "MailboxNotEnabledForRESTAPI") == "no_mailbox"
    assert provisioning.refusal(everyone, "ErrorInvalidUser") == "unknown_user"
    assert provisioning.refusal(everyone, "ErrorSomethingElse") == "other"


def test_a_certificate_microsoft_no_longer_accepts_is_a_409_problem(api, standins):
    app, client = api
    standins.registration.certificates.clear()  # removed from the app registration
    body = problem(client.put(f"/api/v1/mailboxes/{ADELE}"), 409, "microsoft-sign-in-refused")
    assert body["microsoft_code"] == "AADSTS700027"
    with app.app_context():
        assert db.session.query(Connection).count() == 0
