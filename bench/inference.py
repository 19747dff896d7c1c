"""A 10,000-row sync inference against a deployed checkpoint, through a real server.

Trains the guide-shaped model (77 features, N = 4) on a synthetic panel in an emulator served by
uvicorn on a loopback port, deploys its last checkpoint, then times ``inferences/sync`` with
10,000 rows of CSV text: end to end over HTTP and the server's own compute, best of five. While
one inference runs, it also times ``GET /whoami`` to show the event loop stays free.

    .venv/bin/python bench/inference.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import httpx
import torch

from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.servers import serve_in_thread
from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer.guide import adam, guide_hyperparameters
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

KEY = "bench-key"


async def main(rows: int) -> None:
    backend = Platform(Settings(api_key=KEY, clock="auto"))
    try:
        with serve_in_thread(create_app(backend)) as url:
            headers = {"Authorization": f"x-api-key {KEY}"}
            async with (
                httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client,
                Story.connect(f"{url}/api", KEY) as story,
            ):
                await run(client, story, backend, rows)
    finally:
        backend.close()


async def run(client: httpx.AsyncClient, story: Story, backend: Platform, rows: int) -> None:
    await story.upload("train", synthetic_panel(dates=40, assets=100, seed=0))
    hyperparameters = guide_hyperparameters(
        epochs=5, optimizer_config=adam(0.01), early_stopping_config=None
    )
    parameters = {"hyperparameters": hyperparameters, "emulator": {"epoch_seconds": 60}}
    run = await story.submit("job", "train", parameters)
    await story.settle()
    runs = f"/api/v1/projects/{run['project_id']}/experiment_runs/{run['id']}"
    deployment = (
        await client.post(
            f"{runs}/checkpoints/deploy",
            json={"deployment_name": "bench", "checkpoint_name": "epoch-0005"},
        )
    ).json()
    inputs = synthetic_panel(dates=rows // 100, assets=100, seed=1).drop(columns=[TARGET])
    text = inputs.to_csv(index=False)
    url = f"{runs}/deployments/{deployment['id']}/inferences/sync"

    end_to_end, compute = [], []
    for _ in range(6):
        start = time.perf_counter()
        answer = await client.post(url, json={"dataset_file": text})
        end_to_end.append(time.perf_counter() - start)
        assert answer.status_code == 200 and answer.json()["rows"] == len(inputs), answer.text
        start = time.perf_counter()
        backend.deployments.infer(run["project_id"], run["id"], deployment["id"], text)
        compute.append(time.perf_counter() - start)

    async def ping() -> list[float]:
        latencies = []
        for _ in range(20):
            start = time.perf_counter()
            await client.get("/api/v1/whoami")
            latencies.append((time.perf_counter() - start) * 1000)
        return latencies

    idle = await ping()
    _, during = await asyncio.gather(client.post(url, json={"dataset_file": text}), ping())

    print(
        f"Sync inference of {len(inputs):,} rows × 77 features, General HSM N=4 complex, "
        f"torch {torch.__version__}, 1 thread, over HTTP on loopback (best of 5 after a warm-up)"
    )
    print(f"  end to end (HTTP, CSV parse, predict, JSON):   {min(end_to_end[1:]) * 1000:7.1f} ms")
    print(f"  server compute (backend.infer, no HTTP):       {min(compute[1:]) * 1000:7.1f} ms")
    print(f"  GET /whoami while idle, median:                {statistics.median(idle):7.1f} ms")
    print(f"  GET /whoami during an inference, median:       {statistics.median(during):7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    torch.set_num_threads(1)
    sys.setswitchinterval(0.001)  # as `qcog-mock serve`: client and server share this process
    asyncio.run(main(parser.parse_args().rows))
