"""Helpers for the server tests: a tiny dataset, submissions, and reading the timeline."""

from __future__ import annotations

import os
import select
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import Any

import httpx

from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

KEY = "test-key"
FEATURES = 4


def dataset_csv(rows: int = 60, features: int = FEATURES, seed: int = 1) -> bytes:
    frame = synthetic_panel(dates=1, assets=rows, features=features, seed=seed)
    return frame.to_csv(index=False).encode()


def hyperparameters(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "hsm_model": "general",
        "epochs": 6,
        "batch_size": 16,
        "seed": 3,
        "targets": TARGET,
        "input_operator_count": FEATURES,
        "output_operator_count": 1,
        "hilbert_space_dims": 2,
        "optimizer_config": {"type": "Adam", "default_params": {"lr": 0.02}},
        "loss_fn_config": {"type": "MSELoss"},
    }
    params.update(overrides)
    return params


def wait_for_exit(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` has ended within ``timeout`` wall seconds (no polling)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([descriptor], [], [], timeout)[0])
    finally:
        os.close(descriptor)


def until(condition: Callable[[], Any], timeout: float = 60) -> Any:
    """Wait for a condition another process makes true (a worker starting, a result written)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.005)
    return value


@asynccontextmanager
async def connected(environment: QcogPlatform, timeout: float = 120) -> AsyncIterator[Platform]:
    """A test's view of ``environment`` (however it was started), its clients closed after;
    ``timeout``: the raw client's, in wall seconds."""
    async with environment.http(timeout) as client, environment.story() as story:
        platform = Platform(client, story, environment.backend, environment.dashboard_token)
        yield await platform.setup()


@asynccontextmanager
async def emulator(using: Executor | None = None, **settings: Any) -> AsyncIterator[Platform]:
    """A fresh in-process emulator (manual clock unless told otherwise), closed afterwards;
    ``using``: the test's own executor (by default ``settings``' executor, the shared pool)."""
    values = {"api_key": KEY, "clock": "manual", **settings}
    with QcogPlatform.in_process(Settings(**values), executor=using) as started:
        async with connected(started) as platform:
            yield platform
        assert started.backend is not None
        assert_nothing_stranded(started.backend)


def served(base_url: str) -> QcogPlatform:
    """A ``qcog-mock serve`` this test started as a process of its own (to kill it)."""
    return QcogPlatform.target(f"{base_url}/api", KEY)


def assert_nothing_stranded(backend: Emulator) -> None:
    """The engine's watchdog: no run ``running`` with nothing computing it."""
    stranded = backend.engine.stranded()
    assert stranded == [], f"runs left running with no attempt computing them: {stranded}"


class Platform:
    """A test's view of one emulator: raw HTTP, the story's steps, the project and seed ids."""

    __test__ = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        story: Story,
        backend: Emulator | None,
        dashboard_token: str | None = None,
    ) -> None:
        self.client = client  # raw requests, for what the story's steps do not cover
        self.story = story  # the steps, through the client library
        self.backend = backend  # the emulator itself, where the test runs it in process
        self.dashboard_token = dashboard_token  # signs a browser in, where the test started it
        self.project_id = ""
        self.experiment_id = ""
        self.environment_id = ""

    async def setup(self) -> Platform:
        self.project_id = (await self.client.get("/api/v1/whoami")).json()["project_id"]
        experiment = await self.client.get(
            "/api/v1/experiments/pytorch-models", params={"identifier": "name"}
        )
        self.experiment_id = experiment.json()["id"]
        environment = await self.client.get(
            "/api/v1/environments/python3.12", params={"identifier": "name"}
        )
        self.environment_id = environment.json()["id"]
        return self

    @property
    def project(self) -> str:
        return f"/api/v1/projects/{self.project_id}"

    async def upload(self, name: str = "data", content: bytes | None = None, **query: Any):
        return await self.client.post(
            f"{self.project}/datasets/upload",
            params={"name": name, "format": "csv", **query},
            files={"file": ("data.csv", content if content is not None else dataset_csv())},
        )

    async def dataset_id(self, name: str = "data", content: bytes | None = None) -> str:
        dataset = await self.story.upload(name, content if content is not None else dataset_csv())
        return dataset["id"]

    def run_body(self, dataset_id: str, name: str = "job", **params: Any) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "environment_id": self.environment_id,
            "dataset_id": dataset_id,
            "name": name,
            "description": "a test run",
            "metadata": {"provider": "modal"},
            "params": {"hyperparameters": hyperparameters(), **params},
        }

    async def submit(self, dataset_id: str, name: str = "job", **params: Any) -> dict[str, Any]:
        parameters = {"hyperparameters": hyperparameters(), **params}
        return await self.story.submit(
            name, parameters=parameters, dataset_id=dataset_id, description="a test run"
        )

    async def run(self, run_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{self.project}/experiment_runs/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def advance(self, seconds: float) -> dict[str, Any]:
        return await self.story.advance(seconds)

    async def settle(self) -> dict[str, Any]:
        clock = await self.story.settle()
        assert clock["settled"], clock
        return clock

    async def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        return await self.story.events(run_id)


def outcomes(run: dict[str, Any]) -> list[str | None]:
    return [a["outcome"] for a in run["attempts"]]
