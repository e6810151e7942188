"""Application permissions end to end: a script standing in for MyTimetable provisions 50
mailboxes through the API of a portal served over HTTP; they synchronise; the security
group the portal follows gains 3 members and loses 2, and the next pass adds and ends
exactly those; a pass that would end 40 % of the group is held; a mailbox Microsoft
refuses is answered with its reason; a mailbox whose synchronisation ended keeps nothing
of the portal's, and nothing else of its owner's is touched."""

import math
import uuid

import pytest
import requests

from portal import groups
from portal.extensions import db
from portal.models import Configuration, Connection, ConnectionStatus, PassState
from portal.sync import SyncOutcome, jobs
from tests.e2e.conftest import LiveServer
from tests.integration.conftest import add_own_events
from tests.integration.test_api import make_key
from tests.integration.test_sync import ics, lessons
from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_GROUP_ID
from tests.standins.directory import User

LEE = "lee.gu@contoso.edu"  # in the demo group, without an Exchange Online mailbox
EVENTS = 4


class MyTimetable:
    """What MyTimetable does with the API: its key, and plain HTTP requests."""

    def __init__(self, url: str, key: str):
        self.api = f"{url}/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def provision(self, address: str) -> requests.Response:
        return self.http.put(f"{self.api}/mailboxes/{address}", timeout=30)

    def mailboxes(self) -> dict:
        answer = self.http.get(f"{self.api}/mailboxes", params={"per_page": 500}, timeout=30)
        assert answer.status_code == 200, answer.text
        return {m["address"]: m for m in answer.json()["items"]}


def member(standins, feed_server, number: int) -> str:
    """A new member of the demo group, with a mailbox and a timetable."""
    upn = f"student{number:03d}@contoso.edu"
    object_id = str(uuid.UUID(int=number))
    standins.directory.add_user(User(object_id, upn, CONTOSO_TENANT_ID, f"Student {number}"))
    standins.directory.add_member(DEMO_GROUP_ID, object_id)
    standins.registration.policy_mailboxes.add(upn)
    feed_server.calendars[upn] = ics(*lessons(EVENTS))
    return upn


def leave(standins, upn: str) -> None:
    standins.directory.remove_member(DEMO_GROUP_ID, standins.directory.user_by_upn(upn).object_id)


@pytest.fixture
def portal(make_app, standins, configure, feed_server):
    """An approved configuration limited to the demo group by an access policy, following
    the group (GroupMember.Read.All granted), served on 127.0.0.1."""
    app = make_app(**standins.settings())
    configure(
        app,
        security_group_email="mytimetable@contoso.edu",
        group_scope_method="access_policy",
        feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
        follow_group=True,
        leaver_removal="events",
    )
    standins.registration.application_permissions.add("GroupMember.Read.All")
    server = LiveServer(app).start()
    app.config["EXTERNAL_URL"] = server.url
    yield app, server.url
    server.stop()


def follow(app):
    with app.app_context():
        done = groups.follow(db.session.query(Configuration).one())
        db.session.refresh(done)
        db.session.expunge(done)
        return done


def test_fifty_mailboxes_through_the_api_then_the_group_is_followed(portal, standins, feed_server):
    app, url = portal
    directory = standins.directory
    students = [member(standins, feed_server, n) for n in range(50)]
    script = MyTimetable(url, make_key(app))

    # MyTimetable provisions 50 mailboxes; a member without a mailbox is refused, by name.
    assert [script.provision(upn).status_code for upn in students] == [201] * 50
    refused = script.provision(LEE)
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["reason"] == "no_mailbox"
    assert refused.json()["microsoft_code"] == "MailboxNotEnabledForRESTAPI"

    # They synchronise.
    with app.app_context():
        assert jobs.run_waiting(sleep=lambda seconds: None) >= 50
    listed = script.mailboxes()
    assert all(listed[upn]["state"] == ConnectionStatus.CONNECTED for upn in students)
    assert all(listed[upn]["last_sync_outcome"] == SyncOutcome.OK for upn in students)
    assert all(listed[upn]["events"] == EVENTS for upn in students)
    assert all(len(directory.events(upn)) == EVENTS for upn in students)

    # The first pass counts them as the group's (Adele and Megan, members too, are added).
    first = follow(app)
    assert (first.state, first.added, first.removed) == (PassState.DONE, 2, 0)

    # The group gains 3 members and loses 2: the next pass adds and ends exactly those.
    leaving = students[:2]
    with app.app_context():
        calendar = db.session.query(Connection).filter_by(upn=leaving[0]).one().calendar_id
    default = add_own_events(directory, leaving[0], calendar)
    joining = [member(standins, feed_server, n) for n in (50, 51, 52)]
    for upn in leaving:
        leave(standins, upn)
    second = follow(app)
    assert (second.state, second.added, second.removed, second.held) == (PassState.DONE, 3, 2, 0)
    listed = script.mailboxes()
    assert {upn for upn, m in listed.items() if m["state"] == ConnectionStatus.DISCONNECTED} == (
        set(leaving)
    )
    assert all(listed[upn]["state"] == ConnectionStatus.CONNECTED for upn in joining)
    # Nothing of the portal's is left in a leaver's mailbox; its owner's own events stay.
    owner = directory.user_by_upn(leaving[0])
    kept = {
        event["subject"]
        for calendar in directory.calendars(owner)
        for event in directory.events(leaving[0], calendar["id"])
    }
    assert kept == {"Dentist", "Lunch with Megan"}
    assert [e["subject"] for e in directory.events(leaving[0], default)] == ["Lunch with Megan"]

    # A pass that would end 40 % of the group ends nothing: it is held, with its list.
    synchronised = students[2:] + joining
    group = len(synchronised) + 2  # Adele and Megan, synchronised since the first pass
    going = synchronised[: math.ceil(group * 0.4)]  # 22 of 53: past the 20 allowed
    for upn in going:
        leave(standins, upn)
    held = follow(app)
    assert (held.state, held.held, held.removed) == (PassState.HELD, len(going), 0)
    assert {item["upn"] for item in held.held_list} == set(going)
    listed = script.mailboxes()
    assert all(listed[upn]["state"] == ConnectionStatus.CONNECTED for upn in going)
    assert all(len(directory.events(upn)) == EVENTS for upn in going)
