from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.client import EmulatorClient, ExperimentClient
from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.servers import serve_in_thread

KEY = "client-test-key"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Platform]:
    # The clients must not see a developer's own configuration.
    for name in ("QCOG_API_KEY", "QCOG_ENV"):
        monkeypatch.delenv(name, raising=False)
    # Local-path datasets are read from the test's own folder only.
    backend = Platform(Settings(api_key=KEY, clock="manual", dataset_roots=(tmp_path,)))
    yield backend
    backend.close()


@pytest.fixture(params=["in-process", "socket"])
def connection(request: pytest.FixtureRequest, backend: Platform) -> Iterator[dict[str, Any]]:
    """How clients reach the emulator: ASGI transport (no socket) or a real uvicorn server."""
    app = create_app(backend)
    if request.param == "in-process":
        yield {"base_url": "http://testserver/api", "transport": httpx.ASGITransport(app=app)}
    else:
        with serve_in_thread(app) as url:
            yield {"base_url": f"{url}/api", "transport": None}


@pytest.fixture
async def client(connection: dict[str, Any]) -> AsyncIterator[ExperimentClient]:
    async with ExperimentClient(api_key=KEY, **connection) as client:
        yield client  # type: ignore[misc]


@pytest.fixture
async def emulator(connection: dict[str, Any]) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(**connection, api_key=KEY) as emulator:
        yield emulator
