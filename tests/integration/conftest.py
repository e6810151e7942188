"""Integration fixtures: key generation is memoised, since RSA 3072 keys take a while to
make and what is tested here is what the portal does with them (the unit tests check
the keys themselves)."""

import functools

import pytest

from portal import security


@pytest.fixture(autouse=True, scope="session")
def _memoised_keys():
    original = security.generate_certificate
    security.generate_certificate = functools.lru_cache(maxsize=None)(original)
    yield
    security.generate_certificate = original


@pytest.fixture
def feed_server():
    """MyTimetable's iCalendar feed on 127.0.0.1 (see tests/integration/test_sync.py)."""
    from tests.integration.test_sync import FeedServer

    server = FeedServer()
    yield server
    server.server.shutdown()
