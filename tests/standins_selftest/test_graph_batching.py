"""JSON batching, throttling and mailbox concurrency in the Graph stand-in, as Graph
documents them."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.standins_selftest.helpers import CASession, GraphClient

ADELE = "adele.vance@contoso.edu"
MEGAN = "megan.bowen@contoso.edu"
WRITER = "Calendars.ReadWrite"
JSON = {"Content-Type": "application/json"}
EVENT = {
    "subject": "Linear Algebra",
    "start": {"dateTime": "2025-01-15T09:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2025-01-15T10:00:00", "timeZone": "UTC"},
}


@pytest.fixture
def app_client(graph_client):
    return graph_client(WRITER)


def get_calendars(request_id: str, mailbox: str = ADELE, **fields) -> dict:
    return {"id": request_id, "method": "GET", "url": f"/users/{mailbox}/calendars", **fields}


def by_id(response) -> dict:
    assert response.status_code == 200, response.text
    return {answer["id"]: answer for answer in response.json()["responses"]}


# Batching


def test_each_request_of_a_batch_gets_its_own_answer(directory, app_client):
    response = app_client.batch(
        {
            "id": "1",
            "method": "POST",
            "url": f"/users/{ADELE}/events",
            "body": EVENT,
            "headers": JSON,
        },
        {"id": "2", "method": "GET", "url": f"users/{ADELE}/events/AAMkAnope"},
        get_calendars("3", MEGAN),
        {"id": "4", "method": "GET", "url": f"/users/{ADELE}/events?$select=subject"},
    )

    answers = by_id(response)
    assert sorted(answer["id"] for answer in response.json()["responses"]) == ["1", "2", "3", "4"]
    assert answers["1"]["status"] == 201
    assert answers["1"]["body"]["subject"] == "Linear Algebra"
    assert answers["1"]["headers"]["Content-Type"].startswith("application/json")
    assert answers["2"]["status"] == 404
    assert answers["2"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert answers["3"]["status"] == 200
    assert answers["3"]["body"]["value"][0]["owner"]["address"] == MEGAN
    assert [e["subject"] for e in answers["4"]["body"]["value"]] == ["Linear Algebra"]
    assert len(directory.events(ADELE)) == 1
    assert directory.counters["graph:batch"] == 1
    assert directory.counters["graph"] == 5


def test_a_request_whose_dependency_failed_is_424(directory, app_client):
    answers = by_id(
        app_client.batch(
            {"id": "1", "method": "DELETE", "url": f"/users/{ADELE}/events/AAMkAnope"},
            {"id": "2", "method": "POST", "url": f"/users/{ADELE}/events", "body": EVENT,
             "headers": JSON, "dependsOn": ["1"]},
            get_calendars("3", dependsOn=["2"]),
        )
    )  # fmt: skip

    assert [answers[i]["status"] for i in "123"] == [404, 424, 424]
    assert answers["2"]["body"]["error"]["code"] == "FailedDependency"
    assert directory.events(ADELE) == []


def test_answers_come_back_in_another_order_than_the_requests(app_client):
    # json-batching.md: "Individual responses might appear in a different order than the
    # requests. The id property can be used to correlate individual requests and responses."
    response = app_client.batch(*[get_calendars(str(n)) for n in range(4)])

    assert [answer["id"] for answer in response.json()["responses"]] != ["0", "1", "2", "3"]
    assert set(by_id(response)) == {"0", "1", "2", "3"}


def test_a_fully_sequential_batch_may_list_its_chain_in_any_order(app_client):
    # json-batching.md's own example: run 1, then 2, then 4, then 3.
    answers = by_id(
        app_client.batch(
            get_calendars("1"),
            get_calendars("2", dependsOn=["1"]),
            get_calendars("4", dependsOn=["2"]),
            get_calendars("3", dependsOn=["4"]),
        )
    )
    assert {answer["status"] for answer in answers.values()} == {200}


@pytest.mark.parametrize(
    ("count", "depends_on"),
    [
        # Four parallel chains: 0-3 first, then each of 4-7 after its own.
        (8, {str(n): [str(n - 4)] for n in range(4, 8)}),
        # A request without dependsOn beside a chain.
        (3, {"1": ["0"]}),
        # Two requests waiting on the same one: a fork, not a sequence.
        (4, {"1": ["0"], "2": ["0"], "3": ["1"]}),
    ],
)
def test_a_batch_neither_fully_sequential_nor_fully_parallel_is_400(app_client, count, depends_on):
    # json-batching.md: "Batch should be either fully sequential or fully parallel." Graph
    # refuses a mixed batch as a whole (microsoft-graph-docs issue 16280, answered by the
    # docs team: "400 Bad Request: Batch should be either fully sequential or fully
    # parallel.").
    requests = [
        get_calendars(str(n), **({"dependsOn": depends_on[str(n)]} if str(n) in depends_on else {}))
        for n in range(count)
    ]

    response = app_client.batch(*requests)

    assert response.status_code == 400
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "BadRequest",
        "message": "Batch should be either fully sequential or fully parallel.",
    }


def test_delete_answers_204_without_a_body_in_a_batch(app_client):
    event_id = app_client.post(f"/users/{ADELE}/events", json=EVENT).json()["id"]

    [answer] = app_client.batch(
        {"id": "1", "method": "DELETE", "url": f"/users/{ADELE}/events/{event_id}"}
    ).json()["responses"]

    assert answer["status"] == 204
    assert "body" not in answer


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        (
            [get_calendars(str(n)) for n in range(21)],
            "Number of requests in the batch exceeds the limit of 20.",
        ),
        ([get_calendars("a"), get_calendars("A")], "Request Id A has to be unique in a batch."),
        (
            [{"id": "1", "method": "POST", "url": f"/users/{ADELE}/events", "body": EVENT}],
            "Write request id : 1 does not contain Content-Type header or body.",
        ),
        (
            [{"id": "1", "method": "PATCH", "url": f"/users/{ADELE}/events/x", "headers": JSON}],
            "Write request id : 1 does not contain Content-Type header or body.",
        ),
        ([get_calendars("1", dependsOn=["9"])], "not in the batch"),
        ([{"id": "1", "url": f"/users/{ADELE}/calendars"}], "Invalid batch payload format."),
    ],
)
def test_a_batch_graph_would_refuse_is_400(app_client, requests, message):
    response = app_client.batch(*requests)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert message in error["message"]


def test_twenty_requests_are_accepted(app_client):
    # In sequence: twenty at once to one mailbox would pass its limit of four.
    chain = [get_calendars("0")] + [
        get_calendars(str(n), dependsOn=[str(n - 1)]) for n in range(1, 20)
    ]
    answers = by_id(app_client.batch(*chain))
    assert {answer["status"] for answer in answers.values()} == {200}


def test_the_batch_token_authorizes_each_request(graph_client):
    unconsented = graph_client()

    answers = by_id(unconsented.batch(get_calendars("1")))
    no_token = GraphClient(unconsented.session, unconsented.base_url, None).batch(
        get_calendars("1")
    )

    assert answers["1"]["status"] == 403
    assert answers["1"]["body"]["error"]["code"] == "ErrorAccessDenied"
    assert no_token.status_code == 401


# Throttling


def test_a_throttled_mailbox_answers_429_with_retry_after_then_recovers(directory, app_client):
    # Fault injection; the answer is throttling.md's sample throttled response.
    directory.throttle(ADELE, times=2, retry_after=3)

    answers = [app_client.get(f"/users/{ADELE}/calendars") for _ in range(3)]
    other = app_client.get(f"/users/{MEGAN}/calendars")

    assert [r.status_code for r in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    error = answers[0].json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["message"] == "Please retry again later."
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert other.status_code == 200


def test_a_mailbox_can_be_unavailable_with_503(directory, app_client):
    directory.throttle(ADELE, status=503, retry_after=2.5)

    response = app_client.post(f"/users/{ADELE}/events", json=EVENT)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2.5"
    # errors.md: 503 with a Retry-After header, code serviceNotAvailable.
    assert response.json()["error"]["code"] == "serviceNotAvailable"
    assert directory.events(ADELE) == []


def test_throttling_inside_a_batch_answers_that_request_with_retry_after(directory, app_client):
    directory.throttle(ADELE, times=1, retry_after=7)

    answers = by_id(app_client.batch(get_calendars("1"), get_calendars("2", dependsOn=["1"])))
    retried = by_id(app_client.batch(get_calendars("1")))

    assert answers["1"]["status"] == 429
    assert answers["1"]["headers"]["Retry-After"] == "7"
    assert answers["1"]["body"]["error"]["code"] == "TooManyRequests"
    assert answers["2"]["status"] == 424
    assert retried["1"]["status"] == 200


def test_a_mailbox_takes_ten_thousand_requests_in_ten_minutes(directory):
    # throttling-limits.md, Outlook service limits, per app ID and mailbox.
    assert (directory.mailbox_request_limit, directory.mailbox_request_window) == (10_000, 600)


def test_requests_over_the_mailbox_quota_are_429_until_the_window_moves_on(
    directory, app_client, graph_client
):
    # The same rule with a smaller number, so that the test is quick.
    directory.mailbox_request_limit = 3

    statuses = [app_client.get(f"/users/{ADELE}/calendars").status_code for _ in range(4)]
    over = app_client.get(f"/users/{ADELE}/calendars")
    other_mailbox = app_client.get(f"/users/{MEGAN}/calendars")

    assert statuses == [200, 200, 200, 429]
    assert over.json()["error"]["code"] == "TooManyRequests"
    assert 0 < float(over.headers["Retry-After"]) <= 600
    assert other_mailbox.status_code == 200


# Mailbox concurrency


def run_at_once(pki, url: str, token: str, count: int) -> list[int]:
    """Send ``count`` requests to Adele's mailbox at the same moment, each on its own
    connection; their status codes."""
    start = threading.Barrier(count)

    def one(_) -> int:
        with CASession(pki.ca_path) as session:
            client = GraphClient(session, url, token)
            start.wait()
            return client.get(f"/users/{ADELE}/calendars").status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_sequential_requests_occupy_a_mailbox_one_at_a_time(directory, app_client):
    for _ in range(3):
        app_client.get(f"/users/{ADELE}/calendars")
    assert directory.max_concurrency[ADELE] == 1
    assert directory.max_concurrency[MEGAN] == 0


def test_a_mailbox_takes_four_requests_at_once_unless_told_otherwise(directory):
    # throttling-limits.md, Outlook service limits: 4 concurrent requests per app per mailbox.
    assert directory.mailbox_concurrency_limit == 4


def test_concurrent_requests_to_a_mailbox_are_counted(directory, pki, app_client):
    directory.mailbox_latency = 0.3
    directory.mailbox_concurrency_limit = None  # measuring only: Graph's limit switched off

    statuses = run_at_once(pki, app_client.base_url, app_client.token, 6)

    assert statuses == [200] * 6
    assert directory.max_concurrency[ADELE] == 6


def test_requests_over_the_concurrency_limit_are_throttled(directory, pki, app_client):
    directory.mailbox_latency = 0.4

    statuses = run_at_once(pki, app_client.base_url, app_client.token, 6)

    # The requests over the limit are answered at once, so they may not overlap each other.
    assert directory.max_concurrency[ADELE] in (5, 6)
    assert sorted(statuses) == [200, 200, 200, 200, 429, 429]


def test_independent_requests_of_a_batch_run_concurrently(directory, app_client):
    answers = by_id(app_client.batch(*[get_calendars(str(n)) for n in range(6)]))

    assert directory.max_concurrency[ADELE] == 6
    assert [answers[str(n)]["status"] for n in range(6)] == [200] * 4 + [429] * 2
    assert answers["5"]["headers"]["Retry-After"] == "1"
    assert answers["5"]["body"]["error"]["message"] == (
        "Application is over its MailboxConcurrency limit."
    )


def test_sequenced_requests_of_a_batch_run_one_at_a_time(directory, app_client):
    chain = [get_calendars("0")] + [
        get_calendars(str(n), dependsOn=[str(n - 1)]) for n in range(1, 6)
    ]

    answers = by_id(app_client.batch(*chain))

    assert directory.max_concurrency[ADELE] == 1
    assert {answer["status"] for answer in answers.values()} == {200}
