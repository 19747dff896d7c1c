"""Where a test starts: from a snapshot with a deployed model, or from nothing.

    .venv/bin/python bench/snapshot_start.py [--rounds 5] [--rows 2000] [--features 16]
                                             [--epochs 30]

Each round, interleaved, in one process whose worker pool is warm (as the pytest plugin makes it
at collection), times until a first inference is answered:

- blank:    start an emulator → upload a dataset (rows × features) → train a run (epochs) →
            deploy it → infer;
- seed:     start from the repository's example seed file (it trains and deploys as it starts),
            on a manual clock: its run left pending does not take the warm worker meanwhile;
- snapshot: start from a state archive saved after the blank path (goal ≤ 1 s).

Each emulator is in process, reached through ``httpx.ASGITransport``: the marker's path. Then,
as a CI job starts one, ``qcog-mock serve --state`` in a fresh process until its first inference
is answered (a fresh process: its worker imports torch). Prints the median and the fastest of
each and the snapshot's speed-up over the blank start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.servers import free_port
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed" / "ci-seed.toml"
KEY = "bench-key"


@dataclass(frozen=True)
class Job:
    """The blank path's dataset and run."""

    rows: int
    features: int
    epochs: int

    @cached_property
    def data(self) -> pd.DataFrame:
        return synthetic_panel(dates=1, assets=self.rows, features=self.features, seed=1)

    @property
    def rows_to_infer(self) -> str:
        return self.data.drop(columns=[TARGET]).head(3).to_csv(index=False, float_format="%.7g")

    @property
    def params(self) -> dict[str, Any]:
        hyperparameters = {
            "hsm_model": "general", "epochs": self.epochs, "batch_size": 64, "seed": 3,
            "targets": TARGET, "input_operator_count": self.features, "output_operator_count": 1,
            "hilbert_space_dims": 4,
            "optimizer_config": {"type": "Adam", "default_params": {"lr": 0.02}},
            "loss_fn_config": {"type": "MSELoss"},
        }  # fmt: skip
        return {"hyperparameters": hyperparameters, "timeout": 86_400}


async def infer(http: httpx.AsyncClient, key: str, rows: str) -> None:
    """A first inference with the deployment ``production`` of run ``baseline``."""
    http.headers["Authorization"] = f"x-api-key {key}"
    project = (await http.get("/api/v1/whoami")).json()["project_id"]
    base = f"/api/v1/projects/{project}/experiment_runs"
    run = (await http.get(f"{base}/baseline", params={"identifier": "name"})).json()
    runs = f"{base}/{run['id']}/deployments"
    found = (await http.get(f"{runs}/production", params={"identifier": "name"})).json()
    answer = await http.post(
        f"{runs}/{found['id']}/inferences/sync", json={"dataset_file": rows}, timeout=120
    )
    if answer.status_code != 200 or len(answer.json()["predictions"]) != 3:
        raise SystemExit(f"the first inference failed: {answer.text}")


async def blank(job: Job, archive: Path | None = None) -> float:
    started = time.perf_counter()
    with QcogPlatform.in_process(Settings(api_key=KEY, clock="auto")) as platform:
        async with platform.story() as story, platform.http() as http:
            await story.upload("training-data", job.data.to_csv(index=False).encode())
            run = await story.submit("baseline", "training-data", job.params)
            await story.wait("baseline")
            project = (await http.get("/api/v1/whoami")).json()["project_id"]
            deployed = await http.post(
                f"/api/v1/projects/{project}/experiment_runs/{run['id']}/deployments",
                json={
                    "deployment_name": "production",
                    "criterion": {"metric": "loss", "value": "smallest"},
                },
            )
            assert deployed.status_code == 201, deployed.text
            await infer(http, KEY, job.rows_to_infer)
        elapsed = time.perf_counter() - started
        if archive is not None:
            assert platform.backend is not None
            platform.backend.save_state(archive)
    return elapsed


async def started_from(settings: Settings, key: str, rows: str) -> float:
    started = time.perf_counter()
    with QcogPlatform.in_process(settings) as platform:
        async with platform.http() as http:
            await infer(http, key, rows)
        return time.perf_counter() - started


async def served_from(archive: Path, rows: str) -> tuple[float, float]:
    """``qcog-mock serve --state`` in a fresh process: until it answers, and until its first
    inference is answered."""
    port = free_port()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as data_dir:
        command = [
            sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port),
            "--state", str(archive), "--data-dir", data_dir,
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                while True:  # as a CI job waits for its server
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/api/v1/whoami")).status_code < 500:
                            break
                    await asyncio.sleep(0.01)
                answering = time.perf_counter() - started
                await infer(http, KEY, rows)
            return answering, time.perf_counter() - started
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    job = Job(args.rows, args.features, args.epochs)
    os.environ.setdefault("ACME_QCOG_API_KEY", "bench-ci-key-0001")
    ci_key = os.environ["ACME_QCOG_API_KEY"]
    seed_rows = (SEED.parent / "training-data.csv").read_text().splitlines()[:4]
    seed_rows_to_infer = "\n".join(line.rsplit(",", 1)[0] for line in seed_rows)
    times: dict[str, list[float]] = {
        "blank": [], "seed": [], "snapshot": [], "answering": [], "serve": []
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "deployed.tar.gz"
        asyncio.run(blank(job, archive))  # warms the pool and saves the snapshot
        for _ in range(args.rounds):
            times["blank"].append(asyncio.run(blank(job)))
            seed = Settings(api_key=KEY, seed_file=SEED, clock="manual")
            times["seed"].append(asyncio.run(started_from(seed, ci_key, seed_rows_to_infer)))
            snapshot = Settings(api_key=KEY, state_file=archive)
            times["snapshot"].append(asyncio.run(started_from(snapshot, KEY, job.rows_to_infer)))
            answering, inferred = asyncio.run(served_from(archive, job.rows_to_infer))
            times["answering"].append(answering)
            times["serve"].append(inferred)
        size = archive.stat().st_size
    shape = f"{job.rows} rows × {job.features} features, {job.epochs} epochs"
    print(f"until a first inference is answered, {args.rounds} interleaved rounds ({shape}):")
    labels = {
        "blank": "in process: start blank → upload → train → deploy → infer",
        "seed": "in process: start from the example seed file → infer",
        "snapshot": f"in process: start from a snapshot ({size / 1024:.0f} KiB) → infer",
        "answering": "a fresh `qcog-mock serve --state` process → it answers",
        "serve": "a fresh `qcog-mock serve --state` process → infer",
    }
    for name, label in labels.items():
        found = times[name]
        median, fastest = statistics.median(found), min(found)
        print(f"  {label:<62} median {median:6.2f} s  fastest {fastest:6.2f} s")
    ratio = statistics.median(times["blank"]) / statistics.median(times["snapshot"])
    print(f"  in process, a snapshot starts {ratio:.0f}× sooner than the blank path (goal ≤ 1 s)")


if __name__ == "__main__":
    main()
