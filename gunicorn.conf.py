"""gunicorn's settings for the portal: ``gunicorn -c gunicorn.conf.py wsgi:app``.

gunicorn also reads this file by itself when it is started from this folder. Each setting
can be changed with the environment variable beside it; command-line flags win over both.

The portal's requests wait on Microsoft (sign-in redemption, verification checks, Graph),
so each worker process serves several requests at once in threads. Nothing is kept in a
process that another needs: sessions, rate limits and jobs live in the database or Redis,
so any number of these processes, on any number of machines, can serve the same portal.
"""

import gc
import multiprocessing
import os
import sys

from gunicorn import glogging


def _setting(name: str, default):
    """The environment variable ``name``, or ``default`` when it is unset or empty."""
    return os.environ.get(name) or default


# Where to listen. Behind a reverse proxy keep it on loopback or a private address, and set
# PORTAL_PROXY_HOPS to the number of proxies so that redirect URIs use the public address.
bind = _setting("PORTAL_BIND", "127.0.0.1:8000")

# Worker processes and threads per process. A thread waiting on Microsoft holds no CPU, but
# page views are CPU work, and Python runs one thread of a process at a time: the more
# threads share a worker, the longer each page waits its turn, with no more pages served
# (benchmarks/load.py measures it). 4 threads in each of 2 x cores + 1 workers still leave
# room for 20 sign-ins or checks waiting on Microsoft at once on 2 cores.
# More than one needs Redis (PORTAL_REDIS_URL), where they share the sign-in rate limits:
# without it, start-up stops (``on_starting``).
workers = int(_setting("PORTAL_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
worker_class = "gthread"
threads = int(_setting("PORTAL_THREADS", "4"))

# A request may wait on Microsoft for up to PORTAL_HTTP_TIMEOUT (10 s) more than once
# (token redemption, then the calendar); give it room before the worker is replaced.
timeout = int(_setting("PORTAL_WORKER_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5

# Each worker listens on a socket of its own (SO_REUSEPORT), and the kernel spreads new
# connections over them. With one shared socket, whichever worker wakes first accepts: a
# burst of kept-alive connections (a reverse proxy's pool, a load test) can all land on one
# worker while the others idle.
# When a worker stops, connections still waiting in its own queue are reset (Linux 5.14+
# hands them to the others with sysctl net.ipv4.tcp_migrate_req=1), and a second gunicorn
# started by the same user on the same address shares it instead of failing, so stop the
# old one before starting a new one. PORTAL_REUSE_PORT=0 gives one shared socket; set it
# when systemd hands gunicorn its socket (socket activation), which workers with sockets of
# their own would not use.
reuse_port = _setting("PORTAL_REUSE_PORT", "1") != "0"

# Replacing a worker after PORTAL_MAX_REQUESTS requests bounds a slow leak in a library, at
# a price: while the old worker finishes its kept-alive connections and the new one starts,
# a worker's share of the load waits. The portal's memory stays flat (benchmarks/sync.py),
# so it is off unless set; a value of 50000 or more keeps it rare.
max_requests = int(_setting("PORTAL_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10

# The portal is imported once, in the master process, before the workers are forked from it,
# and its templates and catalogs are made ready there (``when_ready``): a worker, first or
# replacement, starts serving at once instead of importing and compiling while the others
# carry its share. After an update, restart gunicorn (a HUP
# reloads the configuration, not the code).
preload_app = _setting("PORTAL_PRELOAD", "1") != "0"


def refuse_rate_limits_in_memory(workers: int, environ) -> None:
    """Refuse several workers that would each count sign-in failures in memory: each would
    allow the whole limit again. Rate limits are shared through Redis (PORTAL_REDIS_URL)."""
    if workers > 1 and not environ.get("PORTAL_REDIS_URL"):
        raise RuntimeError(
            f"{workers} workers would each keep their own sign-in rate limits in memory. "
            "Set PORTAL_REDIS_URL to share them through Redis, or run one worker "
            "(PORTAL_WORKERS=1)."
        )


def on_starting(server):
    """Check the worker count gunicorn settled on (a --workers flag wins over this file)."""
    refuse_rate_limits_in_memory(server.cfg.workers, os.environ)


def _preloaded_portal(server):
    """The preloaded portal application, or None for another app or without preloading
    (the logger below imports the portal's package whatever the app)."""
    if not server.cfg.preload_app:
        return None
    app = server.app.wsgi()
    return app if getattr(app, "name", None) == "portal" else None


def when_ready(server):
    """Warm the preloaded portal, then keep its long-lived objects out of the collector's
    way, so that a full garbage collection in a worker does not walk them on a request."""
    app = _preloaded_portal(server)
    if app is None:
        return
    sys.modules["portal"].warm_up(app)
    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    """A worker opens database connections of its own: should the master have opened one
    while loading the portal, it is dropped from the copied pool, never shared."""
    app = _preloaded_portal(server)
    if app is None:
        return
    with app.app_context():
        sys.modules["portal.extensions"].db.engine.dispose(close=False)


# Prometheus metrics (/metrics, ``portal.metrics``): with several workers, each counts in
# files of its own in PROMETHEUS_MULTIPROC_DIR and a scrape, whichever worker answers it,
# sums them all. Set the variable in the environment gunicorn starts in (prometheus_client
# reads it when the portal is imported, in the master with preloading), to an empty
# directory that RQ workers and `flask sync run` on the same machine share. The counts of a
# worker that stopped stay in its files and keep adding to the sums, as counters must; a
# directory on a tmpfs (/run) starts empty after each boot.


def child_exit(server, worker):
    """Tell prometheus_client that a worker is gone: the figures only a live process gives
    (live gauges) are dropped from its files; its counts are kept."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# Logs to standard output and error, for the service manager or the container to collect,
# as JSON lines in production like the portal's own (PORTAL_LOG_FORMAT, ``portal.logs``).
# The access log shows paths, status codes and the request's ID (X-Request-ID, the one on
# the portal's log lines and error pages); query strings (OAuth codes, states) are left
# out. An invitation link's path holds its token, a key to the institution's configuration:
# gunicorn's logger below takes it (and any OAuth answer a changed format or an error line
# would show) out of every line, whatever the format.
accesslog = _setting("PORTAL_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'
errorlog = "-"
loglevel = _setting("PORTAL_LOG_LEVEL", "info")


class Logger(glogging.Logger):
    """gunicorn's logger, its access and error lines without keys and, in JSON, formatted
    as the portal's own lines are (``portal.logs``)."""

    def setup(self, cfg):
        super().setup(cfg)
        # imported here: gunicorn makes its logger once the portal's folder is on sys.path
        from portal.config import logging_format
        from portal.logs import KEYS, formatter

        development = os.environ.get("PORTAL_ENV") == "development"
        json_lines = logging_format(os.environ, development) == "json"
        for log in (self.error_log, self.access_log):
            log.addFilter(KEYS)
            for handler in log.handlers if json_lines else ():
                handler.setFormatter(formatter("json"))


logger_class = Logger

# The portal trusts X-Forwarded-* through ProxyFix (PORTAL_PROXY_HOPS), not gunicorn.
forwarded_allow_ips = ""

# gunicorn's control socket (for gunicornc) is per user by default, so a second portal on the
# same machine would take it over: it is off unless PORTAL_CONTROL_SOCKET names a path.
control_socket = _setting("PORTAL_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
