"""Attempts in worker processes: wall time of 2, 4 and 8 equal runs submitted at once, against
one run alone, measured side by side in one process.

    .venv/bin/python bench/parallel.py [--workers 2] [--epochs 30] [--rows 6000]

Each run trains the same small General HSM (its own seed) on the auto clock; the figure is the
speed-up: n × (one run's wall time) ÷ (n runs' wall time). The ideal is min(n, workers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx

from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer.guide import adam, guide_hyperparameters
from qcog_mock.trainer.synthetic import synthetic_panel

KEY = "bench-key"


async def wall_time(workers: int, runs: int, epochs: int, rows: int) -> float:
    """Seconds from submitting ``runs`` runs at once until all have completed."""
    platform = Platform(Settings(api_key=KEY, clock="auto", workers=workers))
    try:
        transport = httpx.ASGITransport(app=create_app(platform))
        async with Story.connect("http://testserver/api", KEY, transport=transport) as story:
            await story.upload("data", synthetic_panel(dates=rows // 100, assets=100, seed=0))
            parameters = [
                {
                    "hyperparameters": guide_hyperparameters(
                        epochs=epochs,
                        seed=seed,
                        optimizer_config=adam(0.01),
                        early_stopping_config=None,
                    ),
                    "emulator": {"epoch_seconds": 60},
                }
                for seed in range(runs)
            ]
            started = time.perf_counter()
            for number, params in enumerate(parameters):
                await story.submit(f"run-{number}", "data", params)
            for number in range(runs):
                run = await story.wait(f"run-{number}", timeout=3600)
                assert run["status"] == "completed", run["errors"]
            return time.perf_counter() - started
    finally:
        platform.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    # Start the pool's workers first: each imports torch once, then serves attempt after attempt.
    await wall_time(args.workers, args.workers, 2, args.rows)
    one = await wall_time(args.workers, 1, args.epochs, args.rows)
    print(
        f"{args.epochs} epochs of a 77-feature General HSM on {args.rows:,} rows; "
        f"--workers {args.workers}, {os.cpu_count()} cores"
    )
    print(f"  1 run alone          {one:7.2f} s")
    for runs in (2, 4, 8):
        wall = await wall_time(args.workers, runs, args.epochs, args.rows)
        print(
            f"  {runs} runs at once      {wall:7.2f} s   speed-up {runs * one / wall:4.2f}× "
            f"(ideal {min(runs, args.workers)}×)"
        )


if __name__ == "__main__":
    asyncio.run(main())
