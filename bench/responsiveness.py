"""How a real ``qcog-mock serve`` answers ``GET`` run while runs train: wrk, idle and busy.

    .venv/bin/python bench/responsiveness.py [--seconds 8] [--connections 16]

Starts the server in its own process, trains one run to have something to read, then runs wrk
(Debian's ``wrk``, one thread, so that the load generator takes one core at most; ``make tools``
installs it) against ``GET …/experiment_runs/{id}`` on the idle
server, and again while two long runs train in the workers. Prints requests per second and
p50/p99 latency of each, and the p99 ratio (goal ≤ 1.5; throughput goal ≥ 2,000 req/s).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from serving import free_port, start_server

from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer.guide import adam, guide_hyperparameters
from qcog_mock.trainer.synthetic import synthetic_panel

KEY = "bench-key"


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: x-api-key {KEY}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def milliseconds(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        assert match, output
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rate, output
    return {"rate": float(rate[1]), "p50": milliseconds("50%"), "p99": milliseconds("99%")}


def training(epochs: int, seed: int, epoch_seconds: float) -> dict[str, Any]:
    hp = guide_hyperparameters(
        epochs=epochs, seed=seed, optimizer_config=adam(0.01), early_stopping_config=None
    )
    return {"hyperparameters": hp, "emulator": {"epoch_seconds": epoch_seconds}}


async def measure(port: int, seconds: int, connections: int) -> dict[str, dict[str, float]]:
    base = f"http://127.0.0.1:{port}"
    async with Story.connect(f"{base}/api", KEY) as story:
        await story.upload("data", synthetic_panel(dates=100, assets=100, seed=0))
        run = await story.submit("read-me", "data", training(2, 0, epoch_seconds=3600))
        await story.wait("read-me")
        url = f"{base}/api/v1/projects/{run['project_id']}/experiment_runs/{run['id']}"
        idle = wrk(url, seconds, connections)
        for seed in (1, 2):  # long enough to train through the whole measurement
            await story.submit(f"busy-{seed}", "data", training(10_000, seed, epoch_seconds=1))
        busy = wrk(url, seconds, connections)
        clock = await story.clock()
        assert clock["now"], clock
        return {"idle": idle, "while 2 runs train": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make tools, or apt-get install wrk)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(
            Path(folder), port, KEY, "--clock", "realtime", "--speed", "3600", "--workers", "2"
        )
        try:
            results = asyncio.run(measure(port, args.seconds, args.connections))
        finally:
            server.kill()
            server.wait()
    print(
        f"GET run on one qcog-mock serve process, wrk {args.connections} connections, "
        f"{args.seconds} s each:"
    )
    for label, figures in results.items():
        print(
            f"  {label:<20} {figures['rate']:8,.0f} req/s   p50 {figures['p50']:6.2f} ms   "
            f"p99 {figures['p99']:6.2f} ms"
        )
    ratio = results["while 2 runs train"]["p99"] / results["idle"]["p99"]
    print(f"  p99 while training ÷ idle: {ratio:.2f}  (goal ≤ 1.5; throughput goal ≥ 2,000 req/s)")


if __name__ == "__main__":
    main()
