"""qcog-mock's pytest plugin: webhook receivers for tests.

    def test_my_pipeline(webhook_receiver):              # secret from QCOG_MOCK_WEBHOOK_SECRET
        submit(..., local_webhook_url=webhook_receiver.url)
        event = webhook_receiver.wait_for("run.completed")

    def test_with_a_flaky_endpoint(make_webhook_receiver):
        receiver = make_webhook_receiver(secret, fail_first=3)

Each receiver listens on a free loopback port, verifies every delivery's Standard Webhooks
signature, and is stopped when the test ends.

The plugin also collects scenario files (``scenarios/*.toml``) as test items, each run in process
and over a real socket.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mockserver.receiver import WebhookReceiver

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
