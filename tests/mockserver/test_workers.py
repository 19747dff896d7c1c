"""Attempts in worker processes: parallel yet the same timeline, killable, crash-isolated."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver.engine.executors import LocalProcesses
from qcog_mock.mockserver.engine.protocol import LOOKAHEAD
from qcog_mock.mockserver.testing.servers import free_port
from tests.mockserver.helpers import (
    KEY,
    connected,
    dataset_csv,
    emulator,
    hyperparameters,
    served,
    wait_for_exit,
)
from tests.mockserver.test_restart import server

pytestmark = pytest.mark.torch  # every test here trains

HOUR = 3600


async def three_runs(
    workers: int, executor: str = "local"
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Three runs submitted at once, each needing its retries: the timeline and the runs."""
    async with emulator(workers=workers, executor=executor) as platform:
        dataset = await platform.dataset_id()
        runs = [
            await platform.submit(
                dataset,
                f"job-{seed}",
                hyperparameters=hyperparameters(seed=seed, epochs=6),
                timeout=HOUR,
                retries=2,
                emulator={"epoch_seconds": 1500},
            )
            for seed in range(3)
        ]
        await platform.advance(12 * HOUR)
        timeline = [(e["time"], e["type"], e.get("run_name")) for e in await platform.events()]
        return timeline, [await platform.run(r["id"]) for r in runs]


async def test_parallel_workers_give_the_timeline_and_metrics_of_one_worker() -> None:
    serial_timeline, serial_runs = await three_runs(workers=1)
    parallel_timeline, parallel_runs = await three_runs(workers=3)
    assert parallel_timeline == serial_timeline
    timings = {"total_training_time", "avg_epoch_time"}
    for serial, parallel in zip(serial_runs, parallel_runs, strict=True):
        assert parallel["attempts"] == serial["attempts"]
        assert {k: v for k, v in parallel["metrics"].items() if k not in timings} == {
            k: v for k, v in serial["metrics"].items() if k not in timings
        }
    outcomes = [a["outcome"] for a in serial_runs[0]["attempts"]]
    assert outcomes == ["timed_out", "timed_out", "completed"]  # the retries were exercised


async def test_a_worker_that_dies_is_a_crashed_attempt_and_a_retry_follows(
    pool: LocalProcesses,
) -> None:
    async with emulator(using=pool) as platform:
        dataset = await platform.dataset_id()
        run = await platform.submit(
            dataset, retries=1, hyperparameters=hyperparameters(epochs=10_000),
            emulator={"epoch_seconds": 1},
        )  # fmt: skip
        await platform.advance(6)  # the attempt has started; its worker trains ahead
        (pid,) = pool.busy_pids()
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        await platform.advance(60)
        after = await platform.run(run["id"])
        await platform.client.delete(f"{platform.project}/experiment_runs/{run['id']}")
    first = after["attempts"][0]
    assert first["outcome"] == "crashed"
    assert "the worker process was killed by SIGKILL" in first["reason"]
    assert after["status"] in ("pending", "running") and after["retries_used"] == 1


async def test_an_epoch_beyond_the_wall_time_guard_ends_its_worker() -> None:
    async with emulator(worker_wall_seconds=0.05) as platform:
        dataset = await platform.dataset_id(content=dataset_csv(rows=3000))
        run = await platform.submit(
            dataset, hyperparameters=hyperparameters(epochs=3, batch_size=1, hilbert_space_dims=32)
        )
        await platform.advance(HOUR)
        crashed = await platform.run(run["id"])
    assert crashed["status"] == "failed"
    assert "wall-time guard" in crashed["attempts"][0]["reason"]


async def test_delete_stops_the_worker_at_once(pool: LocalProcesses) -> None:
    async with emulator(using=pool) as platform:
        dataset = await platform.dataset_id()
        run = await platform.submit(
            dataset, hyperparameters=hyperparameters(epochs=10_000), emulator={"epoch_seconds": 1}
        )
        await platform.advance(6)  # the attempt has started; its worker trains ahead
        (pid,) = pool.busy_pids()
        deleted = await platform.client.delete(f"{platform.project}/experiment_runs/{run['id']}")
        assert deleted.status_code == 200
        assert wait_for_exit(pid)  # stopped, not left to train 10,000 epochs


async def test_workers_end_with_a_killed_server(tmp_path: Path) -> None:
    port = free_port()
    with server(tmp_path, port) as process:
        base = f"http://127.0.0.1:{port}"
        async with connected(served(base), timeout=60) as platform:
            dataset = await platform.dataset_id()
            await platform.submit(
                dataset, hyperparameters=hyperparameters(epochs=10_000),
                emulator={"epoch_seconds": 1},
            )  # fmt: skip
            await platform.advance(6)
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid), "-f", "engine.executors"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert children, "the server trains in a worker process"
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert all(wait_for_exit(int(pid)) for pid in children), "a worker outlived the server"


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="the dask extra is not installed (pip install 'qcog-mock[dask]')",
)
async def test_attempts_run_on_a_dask_cluster_with_the_same_timeline(tmp_path: Path) -> None:
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1")
    with cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        local_timeline, local_runs = await three_runs(workers=2)
        timeline, dask_runs = await three_runs(workers=2, executor=address)
    assert timeline == local_timeline
    assert [r["attempts"] for r in dask_runs] == [r["attempts"] for r in local_runs]


async def test_a_worker_computes_a_bounded_number_of_epochs_ahead_of_the_clock(
    pool: LocalProcesses,
) -> None:
    """In manual mode nothing is committed until the clock moves: the worker stops LOOKAHEAD
    checkpoints ahead of the clock, and goes on as the clock does."""
    async with emulator(using=pool) as platform:
        assert platform.backend is not None
        dataset = await platform.dataset_id()
        run = await platform.submit(
            dataset, hyperparameters=hyperparameters(epochs=10_000), emulator={"epoch_seconds": 1}
        )
        folder = platform.backend.files.root / "checkpoints" / run["id"]

        def written() -> int:
            return len(list(folder.glob("*.pt")))

        await platform.advance(6)  # started at 5 s (provisioning): epoch 1 is committed
        for committed in (1, 4):
            assert (await platform.run(run["id"]))["metrics"]["epoch"] == committed
            for _ in range(6000):  # the worker computes ahead, up to the bound
                if written() >= committed + LOOKAHEAD:
                    break
                await asyncio.sleep(0.01)
            # A worker without the bound computes an epoch in milliseconds: in this window it
            # would write dozens more.
            await asyncio.sleep(0.5)
            assert written() == committed + LOOKAHEAD
            await platform.advance(3)
        await platform.client.delete(f"{platform.project}/experiment_runs/{run['id']}")


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="the dask extra is not installed (pip install 'qcog-mock[dask]')",
)
def test_a_killed_server_restarted_on_a_dask_cluster_keeps_one_timeline(tmp_path: Path) -> None:
    """The cluster outlives a SIGKILLed server, and its job with it; the restarted server's
    new try of the attempt is the only one whose results count: every epoch once."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, processes=True, threads_per_worker=1, host="127.0.0.1")
    with cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with server(tmp_path, port, "--executor", address) as process:
            with httpx.Client(base_url=base, headers=AUTH, timeout=120) as client:
                run_id = submit_over_http(client, epochs=30)
                client.post("/_emulator/clock/advance", json={"seconds": 5 * 60})
            process.kill()
            process.wait()
        with (
            server(tmp_path, port, "--executor", address),
            httpx.Client(base_url=base, headers=AUTH, timeout=300) as client,
        ):
            client.post("/_emulator/clock/advance", json={"seconds": 2 * 3600})
            run = client.get(f"{project_path(client)}/experiment_runs/{run_id}").json()
            events = client.get("/_emulator/events", params={"run_id": run_id}).json()
    assert run["status"] == "completed"
    saved = [e["epoch"] for e in events if e["type"] == "checkpoint.saved"]
    assert saved == list(range(1, 31))


AUTH = {"Authorization": f"x-api-key {KEY}"}


def project_path(client: httpx.Client) -> str:
    return f"/api/v1/projects/{client.get('/api/v1/whoami').json()['project_id']}"


def submit_over_http(client: httpx.Client, epochs: int) -> str:
    """A run of ``epochs`` one-minute epochs, on a new dataset: its id."""
    project = project_path(client)
    dataset = client.post(
        f"{project}/datasets/upload",
        params={"name": "data", "format": "csv"},
        files={"file": ("data.csv", dataset_csv())},
    ).json()
    experiment = client.get("/api/v1/experiments/pytorch-models", params={"identifier": "name"})
    environment = client.get("/api/v1/environments/python3.12", params={"identifier": "name"})
    body = {
        "experiment_id": experiment.json()["id"],
        "environment_id": environment.json()["id"],
        "dataset_id": dataset["id"],
        "name": "job",
        "params": {
            "hyperparameters": hyperparameters(epochs=epochs),
            "emulator": {"epoch_seconds": 60},
        },
    }
    answer = client.post(f"{project}/experiment_runs", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]
