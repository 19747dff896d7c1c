from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver.engine.executors import LocalProcesses
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import Settings
from tests.mockserver.helpers import (
    KEY,
    Platform,
    api_client,
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
def backend(settings: Settings) -> Iterator[Emulator]:
    backend = Emulator(settings)
    yield backend
    try:
        assert_nothing_stranded(backend)
    finally:
        backend.close()


@pytest.fixture
async def client(backend: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(backend) as client:
        yield client


@pytest.fixture
async def platform(client: httpx.AsyncClient) -> Platform:
    return await Platform(client).setup()
