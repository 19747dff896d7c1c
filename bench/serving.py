"""A real ``qcog-mock serve`` in its own process, for the benchmarks that talk to one; run as a
script, how long ``serve`` takes from launch to its first answer.

    .venv/bin/python bench/serving.py [--rounds 7]

Prints the fastest and the median of launch → first ``200`` from ``GET /api/v1/whoami`` over
fresh data dirs (goal: ready ≤ 0.5 s).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qcog_mock.mockserver.testing.servers import free_port

__all__ = ["free_port", "start_server"]


def launch(data_dir: Path, port: int, key: str, *options: str) -> subprocess.Popen[str]:
    """``serve`` on ``port`` with ``options``, as a user runs it (default log level: no access
    log), just launched."""
    command = [
        sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), *options,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env={**os.environ, "QCOG_API_KEY": key}, stdout=subprocess.DEVNULL, text=True
    )


def start_server(data_dir: Path, port: int, key: str, *options: str) -> subprocess.Popen[str]:
    """``launch``, once it accepts connections."""
    server = launch(data_dir, port, key, *options)
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


def ready_after(key: str = "bench-key") -> float:
    """Seconds from launching ``serve`` on a fresh data dir to its first 200."""
    import httpx

    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        started = time.perf_counter()
        server = launch(Path(data), port, key)
        try:
            headers = {"Authorization": f"x-api-key {key}"}
            url = f"http://127.0.0.1:{port}/api/v1/whoami"
            while True:
                try:
                    if httpx.get(url, headers=headers, timeout=5).status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(f"qcog-mock serve exited with {server.returncode}")
                time.sleep(0.01)  # a benchmark's poll for a process to start, not a test's
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="qcog-mock serve: launch to first answer")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    times = [ready_after() for _ in range(args.rounds)]
    print(f"qcog-mock serve, launch to the first 200, {args.rounds} rounds:")
    fastest, median = min(times), statistics.median(times)
    print(f"  fastest {fastest:5.2f} s   median {median:5.2f} s  (goal ≤ 0.5 s)")


if __name__ == "__main__":
    main()
