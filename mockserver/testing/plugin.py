"""qcog-mock's pytest plugin, installed with the package (entry point ``qcog_mock``).

Fixtures::

    async def test_pipeline(qcog_client, qcog_clock, qcog_dataset, make_webhook_receiver,
                            qcog_platform):
        await qcog_dataset("training-dat  ", features=77)
        ...submit with qcog_client (an ExperimentClient) as your code does...
        await qcog_clock.advance(seconds=4 * 86400)       # or settle() in auto mode

- ``qcog_platform``: a fresh in-process emulator per test (``httpx.ASGITransport``, no socket);
  ``qcog_socket_platform``: one real uvicorn server per session, reset before each test.
  Both are ``QcogPlatform``s: ``.client()``, ``.emulator()``, ``.story()``, ``.api_key``,
  ``.base_url`` and ``.backend``; ``QcogPlatform.in_process/socket/start/target`` make one
  outside the fixtures.
- ``qcog_client``: a ready ``ExperimentClient``; ``qcog_clock``: the ``EmulatorClient``
  (``clock()``, ``advance()``, ``settle()``, ``set_mode()``, ``events()``); ``qcog_dataset``:
  ``await qcog_dataset(name, data)`` uploads your DataFrame, CSV path or bytes, and
  ``await qcog_dataset(name, dates=, assets=, features=, seed=, target=)`` a synthetic panel.
- ``qcog_time``: the code under test reads the emulator's simulated time from ``time.time``,
  ``datetime.now`` … (freezegun), moved with every ``qcog_clock`` call.
- ``make_webhook_receiver(secret, fail_first=0)`` / ``webhook_receiver``: verifying receivers.
- ``@pytest.mark.qcog(clock="manual", start_time="2026-01-01T00:00:00Z", faults=[...])`` sets
  the in-process platform's clock mode (``auto``, as ``serve``'s, unless told), start time and
  server-wide fault plan; ``seed="seed.toml"`` or ``state="state.tar.gz"`` (relative to the test
  file) is where it starts. A seed is applied once per session: later tests with the same seed
  start from the state it made. A run polled on a manual clock that nothing advances fails the test
  after ``qcog_stall_seconds`` (``ClockStalled``, ``stall.py``) instead of hanging.
- ``pytest --qcog-target=URL`` points the same tests at another server implementing the API
  (a real platform; the key comes from ``QCOG_API_KEY``); tests that need the emulator's clock
  or control plane (``qcog_clock``, ``@pytest.mark.qcog_emulator_only``) are skipped there.

Coroutine tests that use these fixtures (or the ``qcog`` marker) are marked for pytest-asyncio,
so they run in its default strict mode too. Ini options: ``qcog_compat = auto | on | off``
(which ``qcogclient`` / ``qcog_types`` the tests import: see ``qcog_mock.compat``),
``qcog_stall_seconds`` (10; 0: never) and
``qcog_scenarios`` (folders whose ``*.toml`` files are collected as scenarios; none by default).

Loading the plugin imports nothing heavy: the emulator, torch and the client are imported when a
fixture is first used. ``qcog_mock.mockserver.testing`` is the harness on top of the server and
the client; it is the one part of ``mockserver`` that imports ``client``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from qcog_mock.compat import activate

if TYPE_CHECKING:
    from concurrent.futures import Executor

    import httpx
    from fastapi import FastAPI
    from freezegun.api import FrozenDateTimeFactory

    from qcog_mock.client import EmulatorClient, ExperimentClient
    from qcog_mock.mockserver.platform import Platform
    from qcog_mock.mockserver.settings import Settings
    from qcog_mock.mockserver.testing.scenarios import Mode
    from qcog_mock.mockserver.testing.story import Story
    from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver

__all__ = ["FIXTURES", "KEY", "QcogPlatform"]

KEY = "qcog-mock-test-key"
STALL_SECONDS = 10.0  # the default of the ini option qcog_stall_seconds
LOOP_SCOPE = "asyncio_default_fixture_loop_scope"
FIXTURES = frozenset(
    {
        "qcog_platform",
        "qcog_socket_platform",
        "qcog_client",
        "qcog_clock",
        "qcog_dataset",
        "qcog_time",
        "make_webhook_receiver",
        "webhook_receiver",
    }
)
# The fixtures that start (or reach) an in-process emulator.
EMULATORS = FIXTURES - {"qcog_time", "make_webhook_receiver", "webhook_receiver"}
# Code of these packages keeps real time under ``qcog_time``: the emulator, what serves it,
# pytest's own timing (--durations, the junit report) and torch (whose lazy submodules
# freezegun's module scan would otherwise import).
REAL_TIME_PACKAGES = (
    "qcog_mock",
    "_pytest",
    "httpx",
    "httpcore",
    "anyio",
    "uvicorn",
    "starlette",
    "h11",
    "torch",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--qcog-target",
        default=None,
        help="run qcog-mock tests against this API base URL (e.g. https://host/api) instead",
    )
    parser.addini(
        "qcog_compat",
        default="auto",
        help="qcogclient/qcog_types stand-ins: auto (where nothing real is installed), on, off",
    )
    parser.addini(
        "qcog_stall_seconds",
        default=str(STALL_SECONDS),
        help="fail a test that polls a run this many seconds on a manual clock it never "
        "advances (0: never)",
    )
    parser.addini(
        "qcog_scenarios",
        type="paths",
        default=[],
        help="folders whose *.toml files are qcog-mock scenarios (collected as tests)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before any conftest runs, so a ``conftest.py`` may ``import qcogclient`` at its top."""
    mode = early_config.getini("qcog_compat").strip()
    try:
        activate(mode)
    except ValueError as error:
        raise pytest.UsageError(f"{error} (ini option qcog_compat)") from None


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's, which warns
def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin("asyncio") and not _set(config, LOOP_SCOPE):
        # pytest-asyncio warns in every project that leaves this unset. The fixtures work
        # under any value, and their tests need no asyncio configuration: the choice stays
        # the project's, the warning is not shown.
        warnings.filterwarnings(
            "ignore", message=f'The configuration option "{LOOP_SCOPE}" is unset'
        )
    config.addinivalue_line(
        "markers",
        "qcog(clock, start_time, faults, seed, state): the in-process emulator's clock and "
        "faults, and the seed file or state archive it starts from (relative to the test file)",
    )
    config.addinivalue_line(
        "markers", "qcog_emulator_only: needs qcog-mock's control plane; skipped with --qcog-target"
    )


def _set(config: pytest.Config, name: str) -> bool:
    try:
        return bool(config.getini(name))
    except ValueError:  # not an ini option here
        return False


def pytest_report_header(config: pytest.Config) -> list[str]:
    from qcog_mock.compat import NAMES, provider

    mode = config.getini("qcog_compat").strip()
    return [f"qcog-mock: qcog_compat={mode}; " + "; ".join(provider(n).describe() for n in NAMES)]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark coroutine tests that use qcog fixtures for pytest-asyncio (strict mode included)."""
    if not (
        inspect.iscoroutinefunction(obj) and collector.config.pluginmanager.has_plugin("asyncio")
    ):
        return
    marks = {mark.name for mark in getattr(obj, "pytestmark", [])}
    if marks & {"asyncio", "anyio"} or not isinstance(collector, pytest.Module | pytest.Class):
        return
    if not collector.istestfunction(obj, name):
        return
    if "qcog" in marks or FIXTURES & set(inspect.signature(obj).parameters):
        pytest.mark.asyncio(obj)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Where the session's tests start emulators, the shared pool's first worker starts now:
    it imports torch (seconds) while the first test is set up, not once that test submits."""
    if session.config.getoption("--qcog-target"):
        return
    if any(EMULATORS & set(getattr(item, "fixturenames", ())) for item in session.items):
        from qcog_mock.mockserver.engine.executors import local_processes

        local_processes().warm()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.config.getoption("--qcog-target") and item.get_closest_marker("qcog_emulator_only"):
        pytest.skip("needs qcog-mock's control plane (--qcog-target points elsewhere)")


@dataclass
class QcogPlatform:
    """Where a test's clients go: an emulator (in process or on a socket), or another server.

    The one way to start one, for the fixtures, the scenarios and any test::

        with QcogPlatform.in_process(settings) as platform: ...   # httpx.ASGITransport
        with QcogPlatform.socket(settings) as platform: ...       # a real uvicorn server
        with QcogPlatform.start(mode, settings) as platform: ...  # "in-process" or "socket"
        platform = QcogPlatform.target(url, api_key)              # a server run elsewhere
    """

    base_url: str
    api_key: str
    transport: httpx.AsyncBaseTransport | None = None
    backend: Platform | None = None
    # Signs a browser in to the emulator's dashboard: ``{root}/_emulator/ui/login?token=…``.
    dashboard_token: str | None = None
    time_listeners: list[Callable[[str], None]] = field(default_factory=list)

    @classmethod
    @contextmanager
    def in_process(
        cls,
        settings: Settings | None = None,
        *,
        executor: Executor | None = None,
        stall_seconds: float = STALL_SECONDS,
    ) -> Iterator[QcogPlatform]:
        """A fresh emulator reached without a socket; closed (workers and files) afterwards.
        ``executor``: where its attempts compute, if not the settings' (a test's own pool).
        ``stall_seconds``: how long a run may be polled on a manual clock that nothing
        advances before the poll raises ``ClockStalled`` (``stall.py``); 0: never."""
        import httpx

        from qcog_mock.mockserver.testing.stall import StallWatch

        with _app(settings, executor) as (app, backend):
            transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
            if stall_seconds > 0:
                transport = StallWatch(transport, backend, stall_seconds)
            key, token = backend.settings.api_key, app.state.dashboard_token
            yield cls("http://testserver/api", key, transport, backend, token)

    @classmethod
    @contextmanager
    def socket(
        cls, settings: Settings | None = None, port: int = 0, *, executor: Executor | None = None
    ) -> Iterator[QcogPlatform]:
        """A fresh emulator behind a real uvicorn server on loopback (``port`` 0: any free
        one); the server stops, then the emulator closes."""
        from qcog_mock.mockserver.testing.servers import serve_in_thread

        with _app(settings, executor) as (app, backend), serve_in_thread(app, port) as url:
            token = app.state.dashboard_token
            yield cls(f"{url}/api", backend.settings.api_key, None, backend, token)

    @classmethod
    def start(
        cls, mode: Mode, settings: Settings | None = None, port: int = 0
    ) -> AbstractContextManager[QcogPlatform]:
        """``in_process`` or ``socket`` by name: where a test suite runs both."""
        if mode == "in-process":
            return cls.in_process(settings)
        if mode == "socket":
            return cls.socket(settings, port)
        raise ValueError(f"mode: 'in-process' or 'socket', not {mode!r}")

    @classmethod
    def target(cls, base_url: str, api_key: str) -> QcogPlatform:
        """A server this process did not start (the real platform, or a ``qcog-mock serve``)."""
        return cls(base_url, api_key)

    @property
    def emulated(self) -> bool:
        return self.backend is not None

    @property
    def port(self) -> int:
        """The server's port (0 in process, or when the URL names none)."""
        from urllib.parse import urlsplit

        return 0 if self.transport is not None else urlsplit(self.base_url).port or 0

    def http(self, timeout: float = 120) -> httpx.AsyncClient:
        """Raw HTTP to the server's root, with the key: for what the clients do not cover."""
        import httpx

        return httpx.AsyncClient(
            transport=self.transport,
            base_url=self.base_url.removesuffix("/api"),
            headers={"Authorization": f"x-api-key {self.api_key}"},
            timeout=timeout,
        )

    def story(self) -> AbstractAsyncContextManager[Story]:
        """The steps of a long-running-job story (upload, submit, advance, wait) on this server."""
        from qcog_mock.mockserver.testing.story import Story

        return Story.connect(self.base_url, self.api_key, transport=self.transport)

    def client(self) -> ExperimentClient:
        from qcog_mock.client import ExperimentClient

        return ExperimentClient(
            api_key=self.api_key, base_url=self.base_url, transport=self.transport
        )

    def emulator(self) -> EmulatorClient:
        from qcog_mock.client import EmulatorClient

        return EmulatorClient(
            self.base_url, transport=self.transport, on_time=self._moved, api_key=self.api_key
        )

    def _moved(self, now: str) -> None:
        for listener in self.time_listeners:
            listener(now)


@contextmanager
def _app(
    settings: Settings | None, executor: Executor | None
) -> Iterator[tuple[FastAPI, Platform]]:
    """A fresh emulator and its app, however it is reached; the emulator is closed afterwards."""
    from qcog_mock.mockserver.app import create_app
    from qcog_mock.mockserver.platform import Platform

    backend = Platform(settings or _default_settings(), executor=executor)
    try:
        yield create_app(backend), backend
    finally:
        backend.close()


def _default_settings() -> Settings:
    from qcog_mock.mockserver.settings import Settings

    return Settings(api_key=KEY, clock="auto")


def _stall_seconds(config: pytest.Config) -> float:
    text = str(config.getini("qcog_stall_seconds")).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise pytest.UsageError(
            f"qcog_stall_seconds = {text!r}: give a number of seconds, or 0 to never fail a "
            "poll on a manual clock"
        )
    return seconds


def _marker_settings(request: pytest.FixtureRequest) -> tuple[Settings, list[Any]]:
    from qcog_mock.mockserver.clock import parse_time
    from qcog_mock.mockserver.settings import Settings

    marker = request.node.get_closest_marker("qcog")
    options = dict(marker.kwargs) if marker else {}
    faults = options.pop("faults", [])
    values: dict[str, Any] = {"api_key": KEY, "clock": options.pop("clock", "auto")}
    if "start_time" in options:
        values["start_time"] = parse_time(options.pop("start_time"))
    here = Path(request.node.path).parent  # seed= and state= are relative to the test file
    for option in ("seed", "state"):
        if option in options:
            values[f"{option}_file"] = here / options.pop(option)
    if options:
        raise pytest.UsageError(f"@pytest.mark.qcog: unknown option(s) {sorted(options)}")
    try:
        settings = Settings(**values)
    except ValueError as error:
        raise pytest.UsageError(f"@pytest.mark.qcog: {error}") from None
    return _from_seeded_state(request, settings), faults


# A seed's state, once applied in this session, by what it was made from: the next test with the
# same seed starts from that state (as from a snapshot) instead of training its runs again.
_SEEDED: dict[str, Path] = {}
_SEED_KEY = pytest.StashKey[str | None]()


def _seed_key(settings: Settings) -> str | None:
    import hashlib
    import json

    from qcog_mock.mockserver.seeding import SeedError, load

    if settings.seed_file is None:
        return None
    problem = ""
    try:
        seed = load(settings.seed_file)
    except SeedError as error:
        problem = str(error)
    if problem:  # the file's one line, outside the handler: not a chain of two tracebacks
        pytest.fail(problem, pytrace=False)
    made_of = [
        seed.digest, seed.keys, [hashlib.sha256(d).hexdigest() for d in seed.data],
        settings.clock, settings.start_time, settings.api_key, settings.seed,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(made_of).encode()).hexdigest()


def _from_seeded_state(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    from dataclasses import replace

    key = _seed_key(settings)
    if key is not None and key in _SEEDED:
        return replace(settings, seed_file=None, state_file=_SEEDED[key])
    request.node.stash[_SEED_KEY] = key
    return settings


def _keep_seeded_state(request: pytest.FixtureRequest, platform: Platform) -> None:
    """After the first test of a seed: its state, kept for the session's next ones."""
    import shutil

    key = request.node.stash.get(_SEED_KEY, None)
    if key is None or key in _SEEDED or not platform.initial_state.is_file():
        return
    folder = request.getfixturevalue("tmp_path_factory").mktemp("qcog-seeded")
    _SEEDED[key] = Path(shutil.copy(platform.initial_state, folder / "state.tar.gz"))


def _target(config: pytest.Config) -> QcogPlatform | None:
    target = config.getoption("--qcog-target")
    if not target:
        return None
    key = os.environ.get("QCOG_API_KEY")
    if not key:
        raise pytest.UsageError("--qcog-target needs QCOG_API_KEY in the environment")
    return QcogPlatform.target(target, key)


def _end_like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends pytest at once
    raise KeyboardInterrupt


def _tear_down_on_sigterm() -> None:
    """SIGTERM (a cancelled CI job) ends the session as Ctrl-C does: the fixtures are torn
    down, so the emulators' workers and scratch folders go with it. Only where nothing else
    handles SIGTERM, and only in sessions that start an emulator."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _end_like_ctrl_c)


@pytest.fixture
def qcog_platform(request: pytest.FixtureRequest) -> Iterator[QcogPlatform]:
    """A fresh in-process emulator (or the --qcog-target server)."""
    if (target := _target(request.config)) is not None:
        yield target
        return
    settings, faults = _marker_settings(request)
    _tear_down_on_sigterm()
    stall = _stall_seconds(request.config)
    with QcogPlatform.in_process(settings, stall_seconds=stall) as platform:
        assert platform.backend is not None
        _keep_seeded_state(request, platform.backend)
        marker = request.node.get_closest_marker("qcog")
        if settings.state_file is not None and marker and "clock" in marker.kwargs:
            # A state brings its clock's mode; the marker's, if it names one, wins.
            platform.backend.control.set_clock_mode(settings.clock, None)
        if faults:
            platform.backend.control.set_faults(faults)
        yield platform


@pytest.fixture(scope="session")
def _qcog_server(request: pytest.FixtureRequest) -> Iterator[QcogPlatform]:
    if (target := _target(request.config)) is not None:
        yield target
        return
    _tear_down_on_sigterm()
    with QcogPlatform.socket() as platform:
        yield platform


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
def qcog_time(qcog_platform: QcogPlatform) -> Iterator[FrozenDateTimeFactory]:
    """The emulator's simulated time as the wall time of the code under test.

    ``time.time``, ``datetime.now``, ``time.monotonic`` … return the simulated instant
    (freezegun, with asyncio on real time), and follow it after every ``qcog_clock`` call, so a
    poller's "give up after 96 h" is tested in seconds. The emulator itself keeps real time.
    """
    if qcog_platform.backend is None:
        pytest.skip("needs qcog-mock's simulated clock (--qcog-target points elsewhere)")
    from freezegun import freeze_time
    from freezegun.api import FrozenDateTimeFactory

    from qcog_mock.mockserver.clock import parse_time

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    start = at(qcog_platform.backend.clock.now())
    with freeze_time(start, real_asyncio=True, ignore=list(REAL_TIME_PACKAGES)) as frozen:
        assert isinstance(frozen, FrozenDateTimeFactory)  # what freeze_time gives without tick

        def follow(now: str) -> None:
            frozen.move_to(at(parse_time(now)))

        qcog_platform.time_listeners.append(follow)
        try:
            yield frozen
        finally:
            qcog_platform.time_listeners.remove(follow)


@pytest.fixture
def qcog_dataset(qcog_client: ExperimentClient) -> Callable[..., Any]:
    """``await qcog_dataset(name, data)`` uploads your data: a DataFrame, a CSV file's path or
    CSV bytes. ``await qcog_dataset(name, dates=2, assets=100, features=8, seed=0,
    target="scaled_demedian_forward_return_22d")`` uploads a synthetic panel (the guides'
    shape: features ``feature_00``… and the target). Returns the dataset."""
    import io

    async def upload(
        name: str,
        data: Any = None,
        *,
        dates: int | None = None,
        assets: int | None = None,
        features: int | None = None,
        seed: int | None = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        shape = {"dates": dates, "assets": assets, "features": features, "seed": seed}
        given = [key for key, value in {**shape, "target": target}.items() if value is not None]
        if data is not None and given:
            raise TypeError(
                f"qcog_dataset: {', '.join(given)} shape a synthetic panel; with data= your "
                "own data is uploaded as it is. Give one or the other."
            )
        content = _csv_bytes(data) if data is not None else _synthetic_csv(shape, target)
        # A file object: what the real client accepts, as a path is.
        result = await qcog_client.project_client.upload_dataset(
            io.BytesIO(content), name, override=True
        )
        if "error" in result:
            pytest.fail(f"Could not upload dataset '{name}': {result['error']}")
        return result["response"]

    return upload


def _csv_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str | Path):
        return Path(data).read_bytes()
    if hasattr(data, "to_csv"):  # a pandas DataFrame
        return str(data.to_csv(index=False)).encode()
    raise TypeError(
        f"qcog_dataset: data must be a DataFrame, a CSV file's path or CSV bytes, not "
        f"{type(data).__name__}"
    )


def _synthetic_csv(shape: dict[str, int | None], target: str | None) -> bytes:
    from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

    defaults = {"dates": 2, "assets": 100, "features": 8, "seed": 0}
    values = {key: defaults[key] if value is None else value for key, value in shape.items()}
    frame = synthetic_panel(**values)
    if target is not None and target != TARGET:
        frame = frame.rename(columns={TARGET: target})
    return str(frame.to_csv(index=False)).encode()


MakeReceiver = Callable[..., "WebhookReceiver"]


@pytest.fixture
def make_webhook_receiver() -> Iterator[MakeReceiver]:
    """A factory: ``make_webhook_receiver(secret, fail_first=0)`` → a started receiver."""
    from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver

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


# Scenario files as test items: only from the folders the ini option names --------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix != ".toml":
        return None
    folders = parent.config.getini("qcog_scenarios")
    if any(file_path.parent.resolve() == Path(folder).resolve() for folder in folders):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from qcog_mock.mockserver.testing.scenarios import MODES, load

        scenario = load(self.path)
        for mode in MODES:
            yield ScenarioItem.from_parent(self, name=mode, scenario=scenario, mode=mode)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, mode: Mode, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.mode = mode

    def runtest(self) -> None:
        from qcog_mock.mockserver.testing.scenarios import ScenarioError, run_scenario

        result = asyncio.run(run_scenario(self.scenario, self.mode))
        if not result.passed:
            raise ScenarioError(result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from qcog_mock.mockserver.testing.scenarios import ScenarioError

        if isinstance(excinfo.value, ScenarioError):
            return f"Scenario '{self.scenario.title}' ({self.mode}) failed:\n{excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"scenario: {self.scenario.title} [{self.mode}]"
