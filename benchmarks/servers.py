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
    module: str, port: int, env: dict, cwd: Path, workers: int, threads: int = 4
) -> subprocess.Popen:
    """Serve ``module`` with gunicorn (gthread workers) on 127.0.0.1 and wait for it."""
    command = [
        str(VENV_BIN / "gunicorn"),
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        module,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=cwd, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"gunicorn {module} did not start on port {port}")


def stop(process: subprocess.Popen) -> None:
    """Stop gunicorn gracefully, or for good after ten seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
