"""Application permissions: a mailbox Graph says is gone or outside the group goes into a
named state during a sync, is not retried, shows on the page and in the API, and comes
back when provisioned again."""

import pytest

from portal import provisioning
from portal.extensions import db
from portal.models import AuditEvent, Configuration, ConnectionStatus
from portal.sync import SyncOutcome, engine, jobs
from tests.integration.conftest import administrator
from tests.integration.test_api import make_key
from tests.integration.test_sync import ics, lessons

ADELE, MEGAN = "adele.vance@contoso.edu", "megan.bowen@contoso.edu"


def run(app, upn: str):
    with app.app_context():
        connection = provisioning.find(db.session.query(Configuration).one(), upn)
        return engine.run(connection)


def state(app, upn: str) -> str:
    with app.app_context():
        return provisioning.find(db.session.query(Configuration).one(), upn).status


def leave_group(standins, upn: str) -> None:
    standins.registration.policy_mailboxes.discard(upn)


def lose_mailbox(standins, upn: str) -> None:
    standins.directory.user_by_upn(upn).has_mailbox = False


def remove_from_directory(standins, upn: str) -> None:
    standins.directory.remove_user(upn)


@pytest.mark.parametrize(
    "change, expected, code",
    [
        (leave_group, ConnectionStatus.OUTSIDE_GROUP, "ErrorAccessDenied"),
        (lose_mailbox, ConnectionStatus.MAILBOX_NOT_FOUND, "MailboxNotEnabledForRESTAPI"),
        (remove_from_directory, ConnectionStatus.MAILBOX_NOT_FOUND, "ErrorInvalidUser"),
    ],
)
def test_a_write_refused_for_the_mailbox_puts_the_connection_in_its_state(
    group_app, standins, feed_server, change, expected, code
):
    change(standins, ADELE)
    feed_server.calendars[ADELE] = ics(*lessons(5))  # two new lessons to write
    result = run(group_app, ADELE)
    assert result.outcome == SyncOutcome.FAILED and result.error_code == code
    assert state(group_app, ADELE) == expected
    assert state(group_app, MEGAN) == ConnectionStatus.CONNECTED
    with group_app.app_context():
        audit = db.session.query(AuditEvent).filter_by(action="mailbox_out_of_reach").one()
        assert ADELE in audit.detail and expected in audit.detail


def test_a_listing_refused_after_an_unfinished_run_puts_the_connection_in_its_state(
    group_app, standins
):
    """The repair after an unfinished run lists the mailbox's events first: its refusal
    counts the same as a write's."""
    with group_app.app_context():
        connection = provisioning.find(db.session.query(Configuration).one(), ADELE)
        connection.last_sync_outcome = SyncOutcome.FAILED
        db.session.commit()
    leave_group(standins, ADELE)
    assert run(group_app, ADELE).error_code == "ErrorAccessDenied"
    assert state(group_app, ADELE) == ConnectionStatus.OUTSIDE_GROUP


def test_an_app_refused_every_mailbox_keeps_failing_without_a_mailbox_state(
    make_app, standins, configure, feed_server
):
    """Without a group, ErrorAccessDenied means the app lacks the permission: that is the
    configuration's problem, and the connection stays to be retried once it is fixed."""
    app = make_app(**standins.settings())
    configure(app, feed_url_template=f"{feed_server.url}/ical?user={{upn}}")
    standins.registration.policy_mailboxes = None
    feed_server.calendars[ADELE] = ics(*lessons(2))
    with app.app_context():
        provisioning.provision(db.session.query(Configuration).one(), [ADELE], "test")
    standins.registration.application_permissions.discard("Calendars.ReadWrite")
    assert run(app, ADELE).error_code == "ErrorAccessDenied"
    assert state(app, ADELE) == ConnectionStatus.CONNECTED


def test_a_mailbox_out_of_reach_is_not_retried(group_app, standins, feed_server):
    lose_mailbox(standins, ADELE)
    feed_server.calendars[ADELE] = ics(*lessons(5))
    run(group_app, ADELE)
    with group_app.app_context():
        assert jobs.enqueue_all() == 1  # Megan only
        connection = provisioning.find(db.session.query(Configuration).one(), ADELE)
        assert jobs.waiting(connection) is None
        job = jobs.enqueue(connection, "sync now")
        db.session.commit()
        before = standins.directory.counters["graph"]
        assert jobs.run_claimed(job.id, jobs._claim(job.id)) == SyncOutcome.SKIPPED
        assert standins.directory.counters["graph"] == before


def test_provisioning_again_brings_it_back_once_microsoft_accepts_it(
    group_app, standins, feed_server
):
    leave_group(standins, ADELE)
    feed_server.calendars[ADELE] = ics(*lessons(5))
    run(group_app, ADELE)
    with group_app.app_context():
        configuration = db.session.query(Configuration).one()
        again = provisioning.provision(configuration, [ADELE], "test")
        assert again.reasons == {ADELE: "outside_group"}
    assert state(group_app, ADELE) == ConnectionStatus.OUTSIDE_GROUP
    standins.registration.policy_mailboxes.add(ADELE)
    with group_app.app_context():
        configuration = db.session.query(Configuration).one()
        assert provisioning.provision(configuration, [ADELE], "test").added == [ADELE]
        connection = provisioning.find(configuration, ADELE)
        assert connection.last_error_code is None and jobs.waiting(connection) is not None
    assert state(group_app, ADELE) == ConnectionStatus.CONNECTED
    assert run(group_app, ADELE).outcome == SyncOutcome.OK


def test_the_state_shows_in_the_api_and_a_put_revives_it(group_app, standins, feed_server):
    lose_mailbox(standins, ADELE)
    feed_server.calendars[ADELE] = ics(*lessons(5))
    run(group_app, ADELE)
    client = group_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key(group_app)}"
    shown = client.get(f"/api/v1/mailboxes/{ADELE}").json
    assert shown["state"] == "mailbox_not_found"
    assert shown["problem"]["microsoft_code"] == "MailboxNotEnabledForRESTAPI"
    listed = client.get("/api/v1/mailboxes?state=mailbox_not_found").json
    assert [m["address"] for m in listed["items"]] == [ADELE]
    assert client.put(f"/api/v1/mailboxes/{ADELE}").status_code == 422
    standins.directory.user_by_upn(ADELE).has_mailbox = True
    revived = client.put(f"/api/v1/mailboxes/{ADELE}")
    assert revived.status_code == 201 and revived.json["state"] == "connected"


def test_the_state_shows_on_the_mailboxes_page_in_words(group_app, standins, feed_server):
    leave_group(standins, ADELE)
    feed_server.calendars[ADELE] = ics(*lessons(5))
    run(group_app, ADELE)
    admin = administrator(group_app)
    page = admin.client.get("/setup/mailboxes")
    assert "outside the group" in page.text
    dutch = admin.client.get("/setup/mailboxes", headers={"Accept-Language": "nl"})
    assert "buiten de groep" in dutch.text
