from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver.engine.executors import LocalProcesses
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from tests.mockserver.helpers import (
    KEY,
    Platform,
    assert_nothing_stranded,
    wait_for_exit,
)


@pytest.fixture
def pool() -> Iterator[LocalProcesses]:
    """A worker pool of the test's own; its workers are gone when the test is."""
    pool = LocalProcesses()
    yield pool
    pids = pool.busy_pids() + pool.idle_pids()
    pool.shutdown()
    assert all(wait_for_exit(pid) for pid in pids), "a worker outlived its pool"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module or with indirect parametrisation to change the settings."""
    return {}


@pytest.fixture
def settings(settings_overrides: dict[str, Any]) -> Settings:
    return Settings(**{"api_key": KEY, "clock": "manual", **settings_overrides})


@pytest.fixture
def environment(settings: Settings) -> Iterator[QcogPlatform]:
    """The test's emulator, in process, started the one way (``QcogPlatform``)."""
    with QcogPlatform.in_process(settings) as environment:
        yield environment
        assert environment.backend is not None
        assert_nothing_stranded(environment.backend)


@pytest.fixture
def backend(environment: QcogPlatform) -> Emulator:
    assert environment.backend is not None
    return environment.backend


@pytest.fixture
async def client(environment: QcogPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with environment.http() as client:
        yield client


@pytest.fixture
async def platform(environment: QcogPlatform, client: httpx.AsyncClient) -> AsyncIterator[Platform]:
    async with environment.story() as story:
        platform = Platform(client, story, environment.backend, environment.dashboard_token)
        yield await platform.setup()
