"""A real ``qcog-mock serve`` in its own process, for the benchmarks that talk to one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from qcog_mock.mockserver.testing.servers import free_port

__all__ = ["free_port", "start_server"]


def start_server(data_dir: Path, port: int, key: str, *options: str) -> subprocess.Popen[str]:
    """``serve`` on ``port`` with ``options``, as a user runs it (default log level: no access
    log), once it accepts connections."""
    command = [
        sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), *options,
    ]  # fmt: skip
    server = subprocess.Popen(
        command, env={**os.environ, "QCOG_API_KEY": key}, stdout=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"qcog-mock serve exited with {server.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.05)  # a benchmark's wait for a process to start, not a test's
    server.kill()
    raise SystemExit("qcog-mock serve did not start listening within 120 s")
