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
