"""Declarative scenarios: a whole long-running-job story in one TOML file, run and checked.

Format (every table optional except ``runs`` and ``steps``; durations are numbers of seconds or
strings such as ``"90s"``, ``"25m"``, ``"24h"``, ``"4d"``)::

    title = "The guide's 4-day job"
    [clock]     mode = "manual"                        # or "auto"
    [dataset]   name = "training-dat  "                # synthetic: dates, assets, features,
                dates = 20  assets = 100  features = 77  # seed, signal_share; or csv = "x.csv"
    [webhooks]  receiver = true  fail_first = 0        # a verifying receiver for every run
    [[runs]]    name = "job"  timeout = "24h"  retries = 3  epoch_seconds = 3300
                hyperparameters = { epochs = 100 }    # overrides of a small General HSM
                faults = [{ type = "crash", attempt = 1, epoch = 3 }]
    [[steps]]   submit = "job"
    [[steps]]   advance = "96h"                        # or settle = true, or restart = true
    [steps.expect.job]  status = "completed"           # checked after that step
    [expect.job]        attempts = ["timed_out", "completed"]   # checked at the end

Expectations per run: ``status``, ``attempts`` (outcomes), ``current_attempt``,
``epochs_completed``, ``runtime_max`` / ``runtime_min``, ``error_contains``, ``metrics``
(``{name_below = x}`` / ``{name_above = x}``), ``webhooks`` (``"timeline"``: the receiver got
exactly the run's timeline, in order; or a list of types), ``webhooks_received`` (``"timeline"``,
in any order — retries reorder), ``events_include`` (timeline event types).
After every step each run must satisfy Σ attempt runtime ≤ timeout × (1 + retries).
"""

from __future__ import annotations

import tempfile
import tomllib
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from qcog_mock.client import EmulatorError
from qcog_mock.mockserver.clock import monotonic, parse_duration, parse_time
from qcog_mock.mockserver.errors import pydantic_problems
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.seeding import small_hsm
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.assertions import mismatch
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.story import Story, StoryError
from qcog_mock.mockserver.webhooks.events import is_webhook_event
from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver
from qcog_mock.trainer.synthetic import synthetic_panel

KEY = "scenario-key"
Mode = Literal["in-process", "socket"]
MODES: tuple[Mode, ...] = ("in-process", "socket")


def seconds(value: float | str) -> float:
    """A duration: a number of seconds, or a string such as '90s', '25m', '1h30m', '4d'."""
    return float(value) if isinstance(value, int | float) else parse_duration(value)


Duration = float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Clock(_Strict):
    mode: Literal["manual", "auto"] = "manual"


class Dataset(_Strict):
    name: str = "data"
    dates: int = 2
    assets: int = 100
    features: int = 8
    seed: int = 0
    signal_share: float = 0.35
    csv: str | None = None


class Webhooks(_Strict):
    receiver: bool = False
    fail_first: int = 0


class Run(_Strict):
    name: str
    timeout: Duration = "24h"
    retries: int = 0
    epoch_seconds: float | None = None
    cpu_count: int = 1
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    faults: list[dict[str, Any]] = Field(default_factory=list)


class Expectation(_Strict):
    status: str | None = None
    attempts: list[str] | None = None
    current_attempt: int | None = None
    epochs_completed: int | None = None
    runtime_max: Duration | None = None
    runtime_min: Duration | None = None
    error_contains: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    webhooks: Literal["timeline"] | list[str] | None = None
    webhooks_received: Literal["timeline"] | None = None
    events_include: list[str] = Field(default_factory=list)


class Step(_Strict):
    """At most one action (none: the step only checks its expectations)."""

    submit: str | None = None
    advance: Duration | None = None
    settle: bool = False
    restart: bool = False
    expect: dict[str, Expectation] = Field(default_factory=dict)

    @pydantic.model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [name for name in ("submit", "advance", "settle", "restart") if self._does(name)]
        if len(actions) > 1:
            raise ValueError(
                f"a step does one thing, this one has {' and '.join(actions)}: "
                "split it into one [[steps]] table each"
            )
        return self

    def _does(self, action: str) -> bool:
        value = getattr(self, action)
        return value is not None if action == "advance" else bool(value)

    def describe(self) -> str:
        if self.submit:
            return f"submit {self.submit}"
        if self.advance is not None:
            return f"advance {self.advance}"
        if self.restart:
            return "restart"
        return "settle" if self.settle else "check"


class Scenario(_Strict):
    title: str
    description: str = ""
    clock: Clock = Field(default_factory=Clock)
    dataset: Dataset = Field(default_factory=Dataset)
    webhooks: Webhooks = Field(default_factory=Webhooks)
    runs: list[Run]
    steps: list[Step]
    expect: dict[str, Expectation] = Field(default_factory=dict)
    path: Path | None = None


class ScenarioError(AssertionError):
    """A scenario expectation that did not hold, said in the scenario's terms."""


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
        scenario = Scenario.model_validate({**data, "path": path})
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except pydantic.ValidationError as error:
        # One line naming each field at fault, as the API's 422s do.
        raise ValueError(f"{path}: not a valid scenario: {pydantic_problems('', error)}") from None
    names = {run.name for run in scenario.runs}
    for step in scenario.steps:
        if step.submit and step.submit not in names:
            raise ValueError(f"{path}: step 'submit {step.submit}' names no run in [[runs]]")
    return scenario


def discover(paths: list[str | Path]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(path.glob("*.toml")) if path.is_dir() else [path]
    return found


@dataclass
class Result:
    passed: bool
    message: str
    simulated_seconds: float
    wall_seconds: float


class _Session:
    """One scenario's emulator, reached over HTTP (in process or through a socket)."""

    def __init__(self, scenario: Scenario, mode: Mode, data_dir: Path) -> None:
        self.scenario = scenario
        self.mode = mode
        self.settings = Settings(api_key=KEY, clock=scenario.clock.mode, data_dir=data_dir)
        self.run_names: list[str] = []
        self.receiver: WebhookReceiver | None = None
        self._port = 0  # socket mode: the first server's port, reused after a restart

    async def _open(self) -> tuple[AsyncExitStack, Platform, Story]:
        """A server on the scenario's data dir, and a story talking to it (closed LIFO)."""
        stack = AsyncExitStack()
        started = stack.enter_context(QcogPlatform.start(self.mode, self.settings, self._port))
        self._port = started.port  # a restart comes back on the same port
        assert started.backend is not None
        return stack, started.backend, await stack.enter_async_context(started.story())

    async def run(self) -> dict[str, Any]:
        stack, platform, story = await self._open()
        try:
            if self.scenario.webhooks.receiver:
                self.receiver = WebhookReceiver(
                    platform.webhooks.secret, fail_first=self.scenario.webhooks.fail_first
                ).start()
            await self._upload(story)
            for number, step in enumerate(self.scenario.steps, start=1):
                where = f"step {number} ({step.describe()})"
                if step.restart:
                    await stack.aclose()
                    stack, platform, story = await self._open()
                elif step.submit:
                    await self._submit(story, step.submit)
                elif step.advance is not None:
                    await story.advance(seconds(step.advance))
                elif step.settle:
                    await story.settle()
                runs = await self._runs(story)
                _invariant(runs, where)
                await self._check(story, step.expect, runs, where)
            runs = await self._runs(story)
            await self._check(story, self.scenario.expect, runs, "the end")
            return {"runs": runs, "clock": await story.clock()}
        finally:
            await stack.aclose()
            if self.receiver is not None:
                self.receiver.stop()

    async def _upload(self, story: Story) -> None:
        spec = self.scenario.dataset
        if spec.csv:
            base = self.scenario.path.parent if self.scenario.path else Path()
            content = (base / spec.csv).read_bytes()
        else:
            frame = synthetic_panel(
                dates=spec.dates, assets=spec.assets, features=spec.features,
                signal_share=spec.signal_share, seed=spec.seed,
            )  # fmt: skip
            content = frame.to_csv(index=False, float_format="%.7g").encode()
        dataset = await story.upload(spec.name, content)
        self.features = dataset["number_of_columns"] - 1

    async def _submit(self, story: Story, name: str) -> None:
        run = next(r for r in self.scenario.runs if r.name == name)
        hyperparameters = {**small_hsm(self.features), **run.hyperparameters}
        emulator: dict[str, Any] = {"faults": run.faults}
        if run.epoch_seconds is not None:
            emulator["epoch_seconds"] = run.epoch_seconds
        parameters = {
            "hyperparameters": hyperparameters,
            "timeout": int(seconds(run.timeout)),
            "retries": run.retries,
            "cpu_count": run.cpu_count,
            "emulator": emulator,
        }
        webhook_url = self.receiver.url if self.receiver else None
        created = await story.submit(
            name, self.scenario.dataset.name, parameters, webhook_url=webhook_url
        )
        self.run_names.append(created["name"])

    async def _runs(self, story: Story) -> dict[str, Any]:
        return {name: await story.run(name) for name in self.run_names}

    async def _check(
        self,
        story: Story,
        expectations: dict[str, Expectation],
        runs: dict[str, Any],
        where: str,
    ) -> None:
        for name, expected in expectations.items():
            if name not in runs:
                raise ScenarioError(f"At {where}: run '{name}' was expected but never submitted")
            events = await story.events(runs[name]["id"])
            _compare(where, name, expected, runs[name], events, self.receiver)


def _fail(
    where: str, name: str, what: str, expected: Any, actual: Any, events: list[dict[str, Any]]
) -> None:
    raise ScenarioError(mismatch(f"At {where}, run '{name}': {what}", expected, actual, events))


def _compare(
    where: str, name: str, expected: Expectation, run: dict[str, Any], events: list[dict[str, Any]],
    receiver: WebhookReceiver | None,
) -> None:  # fmt: skip
    def check(what: str, want: Any, got: Any) -> None:
        if want != got:
            _fail(where, name, what, want, got, events)

    if expected.status is not None:
        check("status", expected.status, run["status"])
    if expected.attempts is not None:
        check("attempt outcomes", expected.attempts, [a["outcome"] for a in run["attempts"]])
    if expected.current_attempt is not None:
        check("current attempt", expected.current_attempt, run["current_attempt"])
    metrics = run.get("metrics") or {}
    if expected.epochs_completed is not None:
        got = metrics.get("epochs_completed", metrics.get("epoch"))
        check("epochs completed", expected.epochs_completed, got)
    if expected.runtime_max is not None and run["runtime_seconds"] > seconds(expected.runtime_max):
        _fail(
            where,
            name,
            "runtime at most",
            seconds(expected.runtime_max),
            run["runtime_seconds"],
            events,
        )
    if expected.runtime_min is not None and run["runtime_seconds"] < seconds(expected.runtime_min):
        _fail(
            where,
            name,
            "runtime at least",
            seconds(expected.runtime_min),
            run["runtime_seconds"],
            events,
        )
    if expected.error_contains is not None and expected.error_contains not in (
        run.get("error") or ""
    ):
        _fail(where, name, "error containing", expected.error_contains, run.get("error"), events)
    for key, bound in expected.metrics.items():
        metric, _, side = key.rpartition("_")
        value = metrics.get(metric)
        good = value is not None and (value < bound if side == "below" else value > bound)
        if side not in ("below", "above") or not good:
            _fail(where, name, f"metric {key}", bound, value, events)
    types = [e["type"] for e in events]
    for kind in expected.events_include:
        if kind not in types:
            _fail(where, name, "timeline containing", kind, types, events)
    timeline = [t for t in types if is_webhook_event(t)]
    if expected.webhooks is not None or expected.webhooks_received is not None:
        if receiver is None:
            _fail(
                where,
                name,
                "webhooks (needs [webhooks] receiver = true)",
                "a receiver",
                None,
                events,
            )
        got = receiver.types(run["id"])  # type: ignore[union-attr]
        if expected.webhooks is not None:
            want = timeline if expected.webhooks == "timeline" else expected.webhooks
            check("webhook sequence", want, got)
        if expected.webhooks_received is not None:
            check("webhooks received (in any order)", sorted(timeline), sorted(got))


def _invariant(runs: dict[str, Any], where: str) -> None:
    for name, run in runs.items():
        if run["runtime_seconds"] > run["runtime_limit_seconds"] + 1e-6:
            raise ScenarioError(
                f"At {where}, run '{name}': Σ attempt runtime {run['runtime_seconds']} s exceeds "
                f"timeout × (1 + retries) = {run['runtime_limit_seconds']} s"
            )


async def run_scenario(scenario: Scenario, mode: Mode = "in-process") -> Result:
    started = monotonic()
    with tempfile.TemporaryDirectory(prefix="qcog-mock-scenario-") as folder:
        session = _Session(scenario, mode, Path(folder))
        try:
            outcome = await session.run()
        except (ScenarioError, StoryError, EmulatorError) as error:
            return Result(False, str(error), 0.0, monotonic() - started)
    runs = outcome["runs"]
    first = min((r["created_at"] for r in runs.values()), default=None)
    simulated = outcome["clock"]["timestamp"] - parse_time(first) if first else 0.0
    return Result(True, "passed", simulated, monotonic() - started)
