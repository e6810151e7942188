"""The retry policy of Graph batches: Retry-After read both ways, full jitter, the limit."""

from datetime import UTC, datetime

import pytest

from portal.microsoft import graph

NOW = datetime(2026, 12, 6, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Sun, 06 Dec 2026 04:32:00 GMT", 120.0),  # an HTTP date (RFC 9110, 10.2.3)
        ("Sunday, 06-Dec-26 04:31:00 GMT", 60.0),  # its obsolete RFC 850 form
        ("Sun, 06 Dec 2026 04:00:00 GMT", 0.0),  # already past: no wait
        ("-5", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header, seconds):
    assert graph.retry_after(header, now=NOW) == seconds


def test_a_wait_is_jittered_below_the_exponential_bound():
    policy = graph.RetryPolicy(attempts=10, longest_wait=30, first_wait=0.5)
    waits = [policy.wait(3, None) for _ in range(200)]
    assert all(0 <= w <= 4 for w in waits)
    assert len(set(waits)) > 100  # full jitter: spread over the range, not one value
    assert all(w <= 30 for w in (policy.wait(20, None) for _ in range(50)))


def test_a_wait_is_never_shorter_than_what_graph_asked_for():
    policy = graph.RetryPolicy(longest_wait=30)
    assert all(policy.wait(0, 7) >= 7 for _ in range(50))


def test_a_wait_longer_than_the_policy_allows_is_throttled_with_its_time():
    policy = graph.RetryPolicy(longest_wait=30)
    with pytest.raises(graph.Throttled) as raised:
        policy.wait(0, 120)
    assert raised.value.retry_after == 120
    assert "120 s (Retry-After)" in raised.value.message
    seconds = (raised.value.until - datetime.now(UTC)).total_seconds()
    assert 110 < seconds <= 120
