"""Faults the Graph stand-in can be told to show: answers that come too late (after the
request ran, or before it ran), access tokens that lapse in the middle of a run, and events
Graph refuses to store."""

import time

import pytest
import requests

from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID
from tests.standins.identity import GRAPH_DEFAULT
from tests.standins_selftest.helpers import GraphClient

ADELE = "adele.vance@contoso.edu"
MEGAN = "megan.bowen@contoso.edu"
EVENT = {
    "subject": "Linear Algebra",
    "start": {"dateTime": "2025-01-15T09:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2025-01-15T10:00:00", "timeZone": "UTC"},
    "transactionId": "7e0c2d1a-3b4f-4c5d-8e6f-9a0b1c2d3e4f",
}


@pytest.fixture
def app_client(graph_client):
    return graph_client("Calendars.ReadWrite")


def settle(directory, mailbox: str, seconds: float = 5) -> None:
    """Wait until no request runs on the mailbox (a held one has finished)."""
    deadline = time.monotonic() + seconds
    while directory.in_flight(mailbox) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_held_answer_comes_after_the_create_was_made(directory, app_client):
    directory.hold(ADELE, seconds=0.6)

    with pytest.raises(requests.Timeout):
        app_client.post(f"/users/{ADELE}/events", json=EVENT, timeout=0.2)
    assert len(directory.events(ADELE)) == 1  # made, though its answer never arrived

    again = app_client.post(f"/users/{ADELE}/events", json=EVENT, timeout=5)
    settle(directory, ADELE)
    assert again.status_code == 201
    assert [e["id"] for e in directory.events(ADELE)] == [again.json()["id"]]


def test_a_request_held_before_it_runs_is_made_late(directory, app_client):
    directory.hold(ADELE, seconds=0.6, applied=False)

    with pytest.raises(requests.Timeout):
        app_client.post(f"/users/{ADELE}/events", json=EVENT, timeout=0.2)
    assert directory.events(ADELE) == []
    settle(directory, ADELE)
    assert len(directory.events(ADELE)) == 1


def test_a_hold_waits_for_the_requests_it_lets_through(directory, app_client):
    directory.hold(ADELE, seconds=0.6, after=2)

    assert app_client.get(f"/users/{ADELE}/calendars", timeout=0.3).status_code == 200
    assert app_client.get(f"/users/{MEGAN}/calendars", timeout=0.3).status_code == 200
    assert app_client.get(f"/users/{ADELE}/calendars", timeout=0.3).status_code == 200
    with pytest.raises(requests.Timeout):
        app_client.get(f"/users/{ADELE}/calendars", timeout=0.2)


def test_a_held_request_inside_a_batch_holds_the_whole_answer(directory, app_client):
    directory.hold(ADELE, seconds=0.6, after=1)
    second = {**EVENT, "transactionId": "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a"}
    create = {"method": "POST", "url": f"/users/{ADELE}/events"}
    headers = {"Content-Type": "application/json"}

    with pytest.raises(requests.Timeout):
        app_client.post(
            "/$batch",
            json={
                "requests": [
                    {"id": "1", **create, "body": EVENT, "headers": headers},
                    {"id": "2", **create, "body": second, "headers": headers},
                ]
            },
            timeout=0.3,
        )
    settle(directory, ADELE)
    assert len(directory.events(ADELE)) == 2


def test_issued_access_tokens_lapse_after_the_requests_given(directory, standins, make_msal, http):
    directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID).admin_consented = True

    def token() -> str:
        result = make_msal().acquire_token_for_client([GRAPH_DEFAULT])
        return result["access_token"]

    before = GraphClient(http, standins.graph.url, token())
    directory.expire_access_tokens(after=2)

    answers = [before.get(f"/users/{ADELE}/calendars") for _ in range(3)]
    after = GraphClient(http, standins.graph.url, token())

    assert [a.status_code for a in answers] == [200, 200, 401]
    assert answers[2].json()["error"] == {
        **answers[2].json()["error"],
        "code": "InvalidAuthenticationToken",
        "message": "Lifetime validation failed, the token is expired.",
    }
    assert "WWW-Authenticate" in answers[2].headers
    assert after.get(f"/users/{ADELE}/calendars").status_code == 200
    assert before.get(f"/users/{ADELE}/calendars").status_code == 401


def test_one_connection_serves_many_requests_even_after_an_unread_body(standins, app_client):
    token, app_client.token = app_client.token, "not-a-token"
    refused = app_client.post(f"/users/{ADELE}/events", json=EVENT)  # its body is never read
    app_client.token = token
    accepted = standins.graph.accepted

    answers = [app_client.get(f"/users/{ADELE}/calendars") for _ in range(3)]
    created = app_client.post(f"/users/{ADELE}/events", json=EVENT)

    assert refused.status_code == 401
    assert [a.status_code for a in answers] == [200] * 3
    assert created.status_code == 201
    assert standins.graph.accepted == accepted


def test_an_event_with_a_refused_subject_is_refused_every_time_until_accepted(
    directory, app_client
):
    directory.refuse_subject("Linear Algebra", "ErrorInvalidRequest", "Cannot be saved.")
    refused = {"subject": "Linear Algebra", **{k: v for k, v in EVENT.items() if k != "subject"}}

    answers = [app_client.post(f"/users/{ADELE}/events", json=refused) for _ in range(2)]
    batched = app_client.batch(
        {
            "id": "1",
            "method": "POST",
            "url": f"/users/{ADELE}/events",
            "body": refused,
            "headers": {"Content-Type": "application/json"},
        },
    ).json()["responses"][0]

    for answer in answers:
        assert answer.status_code == 400
        assert answer.json()["error"] == {
            **answer.json()["error"],
            "code": "ErrorInvalidRequest",
            "message": "Cannot be saved.",
        }
    assert batched["status"] == 400
    assert directory.events(ADELE) == []
    other = app_client.post(f"/users/{ADELE}/events", json={**refused, "subject": "Other"})
    renamed = app_client.patch(
        f"/users/{ADELE}/events/{other.json()['id']}", json={"subject": "Linear Algebra"}
    )
    assert renamed.status_code == 400
    directory.accept_subject("Linear Algebra")
    assert app_client.post(f"/users/{ADELE}/events", json=refused).status_code == 201
