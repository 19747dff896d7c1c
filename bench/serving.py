"""A real ``qcog-mock serve`` in its own process, for the benchmarks that talk to one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int, key: str, *options: str) -> subprocess.Popen[str]:
    """``serve`` on ``port`` with ``options``, once uvicorn says it is ready."""
    command = [
        sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), "--log-level", "info", *options,
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        env={**os.environ, "QCOG_API_KEY": key},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    for line in server.stderr:
        if "Uvicorn running on" in line:
            return server
    raise SystemExit(f"qcog-mock serve exited with {server.wait()}")
