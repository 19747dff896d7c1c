"""The long-running-jobs guide's job through a real ``qcog-mock serve``, measured.

The job: General HSM, N=4, 100 epochs, early stopping off, timeout 24 h, retries 3, on a synthetic
dataset of 20,000 rows × 78 columns, with an epoch cost (3,300 simulated seconds) that needs all
four attempts: 26 epochs fit in each 24-hour attempt, so three attempts (78 epochs) are not enough.

Printed, from one run of this script:

1. simulated time, wall time and the compression ratio of the job submitted over HTTP in ``auto``
   mode, and the overhead ratio: that wall time ÷ the wall time of the same 100 epochs trained
   directly by ``trainer.train`` in this process with the same torch thread count as the server's
   workers (target ≤ 1.15), each the fastest of three, and the per-epoch persistence cost (what a
   committed epoch writes: checkpoint file, result record, SQLite rows);
2. p50/p99 latency of ``GET`` run from 50 concurrent pollers while the same job trains, and on the
   idle server afterwards (target: p99 under training ≤ 1.5× idle).

The server runs in its own process; this one only generates data, trains directly and polls.

    .venv/bin/python bench/long_running_job.py [--rows-per-date 100] [--dates 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch
from serving import free_port, start_server

from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer import train
from qcog_mock.trainer.guide import guide_hyperparameters
from qcog_mock.trainer.synthetic import write_synthetic_csv

KEY = "bench-key"
EPOCH_SECONDS = 3300
POLLERS = 50
REPEATS = 3  # the job alone, on each side; the fastest of each is compared


def params() -> dict[str, Any]:
    return {
        # The guide's configuration with early stopping off, so that all 100 epochs run.
        "hyperparameters": guide_hyperparameters(early_stopping_config=None),
        "cpu_count": 4,
        "memory": 16384,
        "timeout": 3600 * 24,
        "retries": 3,
        "emulator": {"epoch_seconds": EPOCH_SECONDS},
    }


class Api:
    """The story's steps through the client; ``run`` is one raw GET, the request measured."""

    def __init__(self, client: httpx.AsyncClient, story: Story) -> None:
        self.client = client
        self.story = story

    async def setup(self, csv_path: Path) -> None:
        dataset = await self.story.upload("training-dat  ", csv_path)
        self.project = f"/api/v1/projects/{dataset['project_id']}"

    async def submit(self, name: str) -> str:
        return (await self.story.submit(name, "training-dat  ", params()))["id"]

    async def run(self, run_id: str) -> dict[str, Any]:
        return (await self.client.get(f"{self.project}/experiment_runs/{run_id}")).json()

    async def settle(self) -> None:
        assert (await self.story.settle())["settled"]


async def poll(api: Api, run_id: str, until_done: bool, requests: int) -> list[float]:
    """One poller: GET the run repeatedly; latencies in milliseconds."""
    latencies: list[float] = []
    while True:
        start = time.perf_counter()
        run = await api.run(run_id)
        latencies.append((time.perf_counter() - start) * 1000)
        if until_done and run["status"] in ("completed", "failed"):
            return latencies
        if not until_done and len(latencies) >= requests:
            return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(csv_path: Path, data_dir: Path) -> dict[str, Any]:
    port = free_port()
    server = start_server(data_dir, port, KEY, "--clock", "auto")
    try:
        async with (
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"x-api-key {KEY}"},
                timeout=600,
                limits=httpx.Limits(max_connections=POLLERS + 5),
            ) as client,
            Story.connect(f"http://127.0.0.1:{port}/api", KEY) as story,
        ):
            api = Api(client, story)
            await api.setup(csv_path)

            walls = []
            for attempt in range(REPEATS):
                start = time.perf_counter()
                alone = await api.submit(f"long-running-job-{attempt}")
                await api.settle()
                walls.append(time.perf_counter() - start)
            job = await api.run(alone)
            wall = min(walls)

            busy = await api.submit("long-running-job-polled")
            loaded = await asyncio.gather(*(poll(api, busy, True, 0) for _ in range(POLLERS)))
            idle = await asyncio.gather(*(poll(api, busy, False, 40) for _ in range(POLLERS)))
    finally:
        server.kill()
        server.wait()
    return {
        "job": job,
        "wall": wall,
        "loaded": [x for xs in loaded for x in xs],
        "idle": [x for xs in idle for x in xs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dates", type=int, default=200)
    parser.add_argument("--rows-per-date", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the server trains

    with tempfile.TemporaryDirectory() as folder:
        csv_path = write_synthetic_csv(
            Path(folder) / "data.csv", dates=args.dates, assets=args.rows_per_date, seed=0
        )
        direct_walls = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            direct = train({}, str(csv_path), params=params())["metrics"]
            direct_walls.append(time.perf_counter() - start)
        direct_wall = min(direct_walls)
        result = asyncio.run(measure(csv_path, Path(folder) / "server"))
        persistence = persistence_per_epoch(Path(folder) / "server")

    report(result, direct, direct_wall, args.dates * args.rows_per_date)
    total = persistence * 100
    print(f"  per-epoch persistence    {persistence * 1000:8.2f} ms  (×100 epochs: {total:.2f} s)")


def persistence_per_epoch(data_dir: Path, repeats: int = 50) -> float:
    """Wall seconds one committed epoch costs in writes, replayed on the server's last
    checkpoint: the file (temporary name, rename), the result written, read and consumed, the
    SQLite rows."""
    from qcog_mock.mockserver.engine.protocol import EpochDone, Results
    from qcog_mock.mockserver.files import Files
    from qcog_mock.mockserver.store import Store

    files = Files(data_dir)
    run_id = next((data_dir / "checkpoints").iterdir()).name
    checkpoint = files.load_checkpoint(run_id, "epoch-0100")
    store = Store(data_dir / "persistence.sqlite3")
    results = Results(data_dir)
    record = {"kind": "epoch", "at": 0.0, "metrics": checkpoint["metrics"]}
    done = EpochDone(
        at=0.0, epoch=1, name="epoch", path="checkpoints/bench/epoch.pt",
        metrics=checkpoint["metrics"], train_loss=0.1, val_loss=0.2, best_val_loss=0.2,
    )  # fmt: skip
    started = time.perf_counter()
    for epoch in range(repeats):
        files.save_checkpoint("bench", "epoch", checkpoint)
        results.write(epoch + 1, done)
        results.read(epoch + 1)
        results.consume(epoch + 1)
        with store.transaction():
            store.put_checkpoint("bench", {"name": f"e{epoch}", "epoch": epoch, **record})
            store.add_epoch("bench", epoch, 0.1, 0.2)
            store.put("run", {"id": "bench", "name": "bench", "metrics": record["metrics"]})
            store.add_event(0.0, "checkpoint.saved", "bench", record)
    elapsed = (time.perf_counter() - started) / repeats
    store.close()
    return elapsed


def report(result: dict[str, Any], direct: dict[str, Any], direct_wall: float, rows: int) -> None:
    job, wall = result["job"], result["wall"]
    attempts = job["attempts"]
    span = parse_time(attempts[-1]["ended_at"]) - parse_time(attempts[0]["started_at"])
    limit = job["runtime_limit_seconds"] / 3600
    print(
        f"The guide's job: {rows:,} rows × 78 columns, N=4, 100 epochs, timeout 24 h, retries 3, "
        f"{EPOCH_SECONDS} simulated s per epoch, auto clock, over HTTP"
    )
    print(
        f"  status {job['status']}; attempts {[a['outcome'] for a in attempts]}; "
        f"epochs per attempt {[a['epochs_completed'] for a in attempts]}"
    )
    print(
        f"  simulated running time   {job['runtime_seconds'] / 3600:8.2f} h  (limit {limit:.0f} h; "
        f"first start to end {span / 3600:.2f} h)"
    )
    print(f"  wall time end to end     {wall:8.2f} s")
    print(f"  compression              {span / wall:8,.0f}× (simulated ÷ wall)")
    print(f"  direct trainer, same job {direct_wall:8.2f} s  (epochs {direct['epochs_completed']})")
    print(f"  overhead ratio           {wall / direct_wall:8.3f}  (target ≤ 1.15)")
    timings = ("total_training_time", "avg_epoch_time")
    same = {k: v for k, v in job["metrics"].items() if k not in timings}
    mine = {k: v for k, v in direct.items() if k not in timings}
    print(f"  final metrics identical to the direct run: {same == mine}")
    idle, loaded = result["idle"], result["loaded"]
    print(
        f"GET run latency, {POLLERS} concurrent pollers "
        f"({len(loaded)} requests under training, {len(idle)} idle):"
    )
    for label, values in (("idle", idle), ("training", loaded)):
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        print(f"  {label:<9} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    ratio = percentile(loaded, 0.99) / percentile(idle, 0.99)
    print(f"  p99 under training ÷ idle: {ratio:.2f}  (target ≤ 1.5)")


if __name__ == "__main__":
    main()
