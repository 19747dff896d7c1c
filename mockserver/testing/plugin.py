"""qcog-mock's pytest plugin, installed with the project (entry point ``qcog_mock``).

Fixtures::

    async def test_pipeline(qcog_client, qcog_clock, qcog_dataset, make_webhook_receiver,
                            qcog_platform):
        await qcog_dataset("training-dat  ", features=77)
        ...submit with qcog_client (an ExperimentClient) as your code does...
        await qcog_clock.advance(seconds=4 * 86400)       # or settle() in auto mode

- ``qcog_platform``: a fresh in-process emulator per test (``httpx.ASGITransport``, no socket);
  ``qcog_socket_platform``: one real uvicorn server per session, reset before each test.
  Both offer ``.client()``, ``.emulator()``, ``.api_key``, ``.base_url`` and ``.backend``.
- ``qcog_client``: a ready ``ExperimentClient``; ``qcog_clock``: the ``EmulatorClient``
  (``clock()``, ``advance()``, ``settle()``, ``set_mode()``, ``events()``); ``qcog_dataset``:
  ``await qcog_dataset(name, dates=, assets=, features=, seed=)`` uploads synthetic data.
- ``make_webhook_receiver(secret, fail_first=0)`` / ``webhook_receiver``: verifying receivers.
- ``@pytest.mark.qcog(clock="manual", start_time="2026-01-01T00:00:00Z", faults=[...])`` sets
  the in-process platform's clock mode, start time and server-wide fault plan.
- ``pytest --qcog-target=URL`` points the same tests at another server implementing the API
  (a real platform; the key comes from ``QCOG_API_KEY``); tests that need the emulator's clock
  or control plane (``qcog_clock``, ``@pytest.mark.qcog_emulator_only``) are skipped there.

Each receiver listens on a free loopback port, verifies every delivery's Standard Webhooks
signature, and is stopped when the test ends.

The plugin also collects scenario files (``scenarios/*.toml``) as test items, each run in process
and over a real socket.

``mockserver.testing`` is the harness on top of the server and the client; it is the one part of
``mockserver`` that imports ``client``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from client import EmulatorClient, ExperimentClient
from mockserver.app import create_app
from mockserver.backend import PlatformBackend
from mockserver.clock import parse_time
from mockserver.receiver import WebhookReceiver
from mockserver.settings import Settings
from mockserver.testing.servers import serve_in_thread
from trainer.synthetic import synthetic_panel

KEY = "qcog-mock-test-key"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--qcog-target",
        default=None,
        help="run qcog-mock tests against this API base URL (e.g. https://host/api) instead",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "qcog(clock, start_time, faults): the in-process emulator's clock and faults"
    )
    config.addinivalue_line(
        "markers", "qcog_emulator_only: needs qcog-mock's control plane; skipped with --qcog-target"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.config.getoption("--qcog-target") and item.get_closest_marker("qcog_emulator_only"):
        pytest.skip("needs qcog-mock's control plane (--qcog-target points elsewhere)")


@dataclass
class QcogPlatform:
    """Where a test's clients go: an emulator (in process or on a socket), or another server."""

    base_url: str
    api_key: str
    transport: httpx.AsyncBaseTransport | None = None
    backend: PlatformBackend | None = None

    @property
    def emulated(self) -> bool:
        return self.backend is not None

    def client(self) -> ExperimentClient:
        return ExperimentClient(
            api_key=self.api_key, base_url=self.base_url, transport=self.transport
        )

    def emulator(self) -> EmulatorClient:
        return EmulatorClient(self.base_url, transport=self.transport)


def _marker_settings(request: pytest.FixtureRequest) -> tuple[Settings, list[Any]]:
    marker = request.node.get_closest_marker("qcog")
    options = dict(marker.kwargs) if marker else {}
    faults = options.pop("faults", [])
    values: dict[str, Any] = {"api_key": KEY, "clock": options.pop("clock", "manual")}
    if "start_time" in options:
        values["start_time"] = parse_time(options.pop("start_time"))
    if options:
        raise pytest.UsageError(f"@pytest.mark.qcog: unknown option(s) {sorted(options)}")
    return Settings(**values), faults


def _target(config: pytest.Config) -> QcogPlatform | None:
    target = config.getoption("--qcog-target")
    if not target:
        return None
    key = os.environ.get("QCOG_API_KEY")
    if not key:
        raise pytest.UsageError("--qcog-target needs QCOG_API_KEY in the environment")
    return QcogPlatform(base_url=target, api_key=key)


@pytest.fixture
def qcog_platform(request: pytest.FixtureRequest) -> Iterator[QcogPlatform]:
    """A fresh in-process emulator (or the --qcog-target server)."""
    if (target := _target(request.config)) is not None:
        yield target
        return
    settings, faults = _marker_settings(request)
    backend = PlatformBackend(settings)
    try:
        if faults:
            backend.set_faults(faults)
        transport = httpx.ASGITransport(app=create_app(backend))
        yield QcogPlatform("http://testserver/api", KEY, transport, backend)
    finally:
        backend.close()


@pytest.fixture(scope="session")
def _qcog_server(request: pytest.FixtureRequest) -> Iterator[QcogPlatform]:
    if (target := _target(request.config)) is not None:
        yield target
        return
    backend = PlatformBackend(Settings(api_key=KEY, clock="manual"))
    try:
        with serve_in_thread(create_app(backend)) as url:
            yield QcogPlatform(f"{url}/api", KEY, None, backend)
    finally:
        backend.close()


@pytest.fixture
def qcog_socket_platform(_qcog_server: QcogPlatform) -> QcogPlatform:
    """The session's real-socket emulator, reset to its seed state for this test."""
    if _qcog_server.backend is not None:
        _qcog_server.backend.reset()
    return _qcog_server


@pytest_asyncio.fixture
async def qcog_client(qcog_platform: QcogPlatform) -> AsyncIterator[ExperimentClient]:
    async with qcog_platform.client() as client:
        yield client  # type: ignore[misc]


@pytest_asyncio.fixture
async def qcog_clock(qcog_platform: QcogPlatform) -> AsyncIterator[EmulatorClient]:
    if not qcog_platform.emulated:
        pytest.skip("needs qcog-mock's simulated clock (--qcog-target points elsewhere)")
    async with qcog_platform.emulator() as emulator:
        yield emulator


@pytest.fixture
def qcog_dataset(qcog_client: ExperimentClient) -> Callable[..., Any]:
    """``await qcog_dataset(name, dates=2, assets=100, features=8, seed=0)``: synthetic data
    (features + the guide's target) uploaded under ``name``; returns the dataset."""

    async def upload(
        name: str, *, dates: int = 2, assets: int = 100, features: int = 8, seed: int = 0
    ) -> dict[str, Any]:
        frame = synthetic_panel(dates=dates, assets=assets, features=features, seed=seed)
        result = await qcog_client.project_client.upload_dataset(frame, name, override=True)
        if "error" in result:
            pytest.fail(f"Could not upload dataset '{name}': {result['error']}")
        return result["response"]

    return upload


MakeReceiver = Callable[..., WebhookReceiver]


@pytest.fixture
def make_webhook_receiver() -> Iterator[MakeReceiver]:
    """A factory: ``make_webhook_receiver(secret, fail_first=0)`` → a started receiver."""
    started: list[WebhookReceiver] = []

    def make(secret: str, *, fail_first: int = 0) -> WebhookReceiver:
        receiver = WebhookReceiver(secret, fail_first=fail_first).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def webhook_receiver(make_webhook_receiver: MakeReceiver) -> WebhookReceiver:
    """A receiver verifying with the secret in ``QCOG_MOCK_WEBHOOK_SECRET``."""
    secret = os.environ.get("QCOG_MOCK_WEBHOOK_SECRET")
    if not secret:
        pytest.fail(
            "webhook_receiver needs QCOG_MOCK_WEBHOOK_SECRET (the secret qcog-mock serve prints); "
            "or use make_webhook_receiver(secret)"
        )
    return make_webhook_receiver(secret)


# Scenario files as test items ------------------------------------------------------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Any) -> pytest.Collector | None:
    """Every ``*.toml`` in a folder named ``scenarios`` is a scenario, run in both modes."""
    if file_path.suffix == ".toml" and file_path.parent.name == "scenarios":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from mockserver.testing.scenarios import MODES, load

        scenario = load(self.path)
        for mode in MODES:
            yield ScenarioItem.from_parent(self, name=mode, scenario=scenario, mode=mode)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.mode = mode

    def runtest(self) -> None:
        from mockserver.testing.scenarios import ScenarioError, run_scenario

        result = asyncio.run(run_scenario(self.scenario, self.mode))  # type: ignore[arg-type]
        if not result.passed:
            raise ScenarioError(result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from mockserver.testing.scenarios import ScenarioError

        if isinstance(excinfo.value, ScenarioError):
            return f"Scenario '{self.scenario.title}' ({self.mode}) failed:\n{excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"scenario: {self.scenario.title} [{self.mode}]"
