"""qcog-mock's pytest plugin: webhook receivers for tests.

    def test_my_pipeline(webhook_receiver):              # secret from QCOG_MOCK_WEBHOOK_SECRET
        submit(..., local_webhook_url=webhook_receiver.url)
        event = webhook_receiver.wait_for("run.completed")

    def test_with_a_flaky_endpoint(make_webhook_receiver):
        receiver = make_webhook_receiver(secret, fail_first=3)

Each receiver listens on a free loopback port, verifies every delivery's Standard Webhooks
signature, and is stopped when the test ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

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
