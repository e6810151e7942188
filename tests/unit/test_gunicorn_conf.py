"""gunicorn.conf.py refuses to start several workers that would each keep their own rate
limits in memory."""

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

CONF = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))


@pytest.mark.parametrize(
    "workers, environ, refused",
    [
        (1, {}, False),
        (3, {}, True),
        (3, {"PORTAL_REDIS_URL": ""}, True),
        (3, {"PORTAL_REDIS_URL": "redis://127.0.0.1:6379/0"}, False),
        (1, {"PORTAL_REDIS_URL": "redis://127.0.0.1:6379/0"}, False),
    ],
)
def test_several_workers_need_a_shared_rate_limit_store(workers, environ, refused):
    check = CONF["refuse_rate_limits_in_memory"]
    if refused:
        with pytest.raises(RuntimeError, match="PORTAL_REDIS_URL"):
            check(workers, environ)
    else:
        check(workers, environ)


def test_start_up_checks_the_workers_gunicorn_will_run(monkeypatch):
    """The worker count as gunicorn settled it (a --workers flag wins over the file)."""
    monkeypatch.delenv("PORTAL_REDIS_URL", raising=False)
    with pytest.raises(RuntimeError, match="PORTAL_WORKERS=1"):
        CONF["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=2)))
    CONF["on_starting"](SimpleNamespace(cfg=SimpleNamespace(workers=1)))


def test_a_stopped_worker_is_marked_dead_for_the_metrics(monkeypatch, tmp_path):
    """prometheus_client's multiprocess mode: a dead worker's live gauges go, its counts
    stay in the sums."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livesum_4321.db", "counter_4321.db", "gauge_livesum_1234.db"):
        (tmp_path / name).write_bytes(b"")
    CONF["child_exit"](None, SimpleNamespace(pid=4321))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_4321.db",
        "gauge_livesum_1234.db",
    ]


def test_without_multiprocess_metrics_a_stopped_worker_needs_nothing(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    CONF["child_exit"](None, SimpleNamespace(pid=4321))
