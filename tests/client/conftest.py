from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from qcog_mock.client import EmulatorClient, ExperimentClient
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform

KEY = "client-test-key"


@pytest.fixture(params=["in-process", "socket"])
def environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[QcogPlatform]:
    """How clients reach the emulator: ASGI transport (no socket) or a real uvicorn server."""
    # The clients must not see a developer's own configuration.
    for name in ("QCOG_API_KEY", "QCOG_ENV"):
        monkeypatch.delenv(name, raising=False)
    # Local-path datasets are read from the test's own folder only.
    settings = Settings(api_key=KEY, clock="manual", dataset_roots=(tmp_path,))
    with QcogPlatform.start(request.param, settings) as environment:
        yield environment


@pytest.fixture
def backend(environment: QcogPlatform) -> Platform:
    assert environment.backend is not None
    return environment.backend


@pytest.fixture
def connection(environment: QcogPlatform) -> dict[str, Any]:
    return {"base_url": environment.base_url, "transport": environment.transport}


@pytest.fixture
async def client(connection: dict[str, Any]) -> AsyncIterator[ExperimentClient]:
    async with ExperimentClient(api_key=KEY, **connection) as client:
        yield client  # type: ignore[misc]


@pytest.fixture
async def emulator(connection: dict[str, Any]) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(**connection, api_key=KEY) as emulator:
        yield emulator
