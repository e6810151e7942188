"""What the benchmarks share: free loopback ports, gunicorn started and stopped."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn(
    module: str,
    port: int,
    env: dict,
    cwd: Path,
    workers: int,
    threads: int | None = 4,
    config: Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """Serve ``module`` with gunicorn on 127.0.0.1 and wait for it.

    Without ``config``: gthread workers with ``threads`` each, warnings only (and what a
    ``gunicorn.conf.py`` in ``cwd`` says, as gunicorn reads it). With ``config``: that
    file's settings, except the address and the worker count (and ``threads`` when given).
    ``log`` receives gunicorn's output.
    """
    command = [str(VENV_BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    if config is None:
        command += ["--worker-class", "gthread", "--log-level", "warning"]
    else:
        command += ["--config", str(config)]
    if threads is not None:
        command += ["--threads", str(threads)]
    output = open(log, "ab") if log else None  # noqa: SIM115  # gunicorn writes to it
    process = subprocess.Popen(command + [module], cwd=cwd, env=env, stdout=output, stderr=output)
    if output:
        output.close()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"gunicorn {module} did not start on port {port}")


def stop(process: subprocess.Popen) -> None:
    """Stop gunicorn gracefully, or for good after ten seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
