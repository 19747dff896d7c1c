"""The steps of every long-running-job story, through the client: upload a dataset, submit a
run, move the simulated clock, read the run and its timeline.

    async with Story.connect(base_url, api_key, transport=transport) as story:
        await story.upload("training", frame)
        run = await story.submit("job", "training", {"hyperparameters": hp, "timeout": 3600})
        await story.advance(4 * 86400)
        run = await story.run("job")

Used by the demo, the scenario runner, the benchmarks and the tests. Unlike the client, whose
methods answer with envelopes, a step that fails raises ``StoryError`` with the server's message.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from qcog_mock.client import EmulatorClient, ExperimentClient, is_error, wait_for_run
from qcog_mock.client.adapters import load_dataframe

EXPERIMENT = "pytorch-models"


class StoryError(Exception):
    pass


def _answer(step: str, result: dict[str, Any]) -> Any:
    if is_error(result):
        raise StoryError(f"{step}: {result['error']}")
    return result["response"]


class Story:
    def __init__(self, client: ExperimentClient, emulator: EmulatorClient) -> None:
        self.client = client
        self.emulator = emulator

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 600,
    ) -> AsyncIterator[Story]:
        """A story against the API under ``base_url`` (``…/api``)."""
        client = ExperimentClient(
            api_key=api_key, base_url=base_url, transport=transport, timeout=timeout
        )
        emulator = EmulatorClient(base_url, transport=transport, timeout=timeout, api_key=api_key)
        try:
            yield cls(client, emulator)
        finally:
            await emulator.aclose()
            await client.aclose()

    async def upload(self, name: str, data: Any) -> dict[str, Any]:
        """Upload a DataFrame, CSV bytes or a CSV path as dataset ``name`` (replacing it)."""
        if isinstance(data, bytes):
            data = io.BytesIO(data)
        elif isinstance(data, str):
            data = Path(data)
        elif hasattr(data, "to_csv"):  # the client takes a Path or a file, as the real one
            data = load_dataframe(data)
        result = await self.client.project_client.upload_dataset(data, name, override=True)
        return _answer(f"upload dataset '{name}'", result)

    async def submit(
        self,
        name: str,
        dataset_name: str | None = None,
        parameters: dict[str, Any] | None = None,
        *,
        dataset_id: str | None = None,
        webhook_url: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Submit run ``name`` of the pytorch-models experiment on a CPU environment."""
        result = await self.client.run_experiment(
            name,
            description,
            experiment_name=EXPERIMENT,
            instance="cpu",
            dataset_name=dataset_name,
            dataset_id=dataset_id,
            parameters=parameters or {},
            local_webhook_url=webhook_url,
        )
        return _answer(f"submit run '{name}'", result)["experiment_run"]

    async def run(self, name: str) -> dict[str, Any]:
        return _answer(f"read run '{name}'", await self.client.get_experiment_run(name))

    async def wait(self, name: str, timeout: float = 600) -> dict[str, Any]:
        """The run once completed or failed, driving the clock as its mode allows."""
        return await wait_for_run(self.client, name, timeout=timeout, emulator=self.emulator)

    async def advance(self, seconds: float) -> dict[str, Any]:
        return await self.emulator.advance(seconds=seconds)

    async def settle(self) -> dict[str, Any]:
        return await self.emulator.settle()

    async def clock(self) -> dict[str, Any]:
        return await self.emulator.clock()

    async def events(self, run_id: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        return await self.emulator.events(run_id, after)
