"""Property tests of the retry-extension rule over random budgets, through HTTP.

Oracle: with an epoch cost of c seconds and a per-attempt timeout of T, an attempt completes
k = ⌊T / c⌋ epochs (one ending exactly at the deadline counts) and loses the partial one. A run of
E epochs therefore completes iff k ≥ 1 and k · (1 + retries) ≥ E, using ⌈E / k⌉ attempts.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.documents import RUN_TRANSITIONS, TERMINAL
from qcog_mock.mockserver.testing.assertions import statuses
from tests.mockserver.helpers import emulator, hyperparameters

pytestmark = pytest.mark.torch  # every test here trains


def legal(sequence: list[str]) -> bool:
    """Every step is in the engine's own transition table, and the run ends."""
    previous = None
    for status in sequence:
        if (previous, status) not in RUN_TRANSITIONS:
            return False
        previous = status
    return previous in TERMINAL


async def story(epochs: int, cost: int, timeout: int, retries: int) -> tuple[dict, list[dict]]:
    async with emulator() as platform:
        dataset = await platform.dataset_id()
        run = await platform.submit(
            dataset,
            hyperparameters=hyperparameters(epochs=epochs),
            timeout=timeout,
            retries=retries,
            emulator={"epoch_seconds": cost},
        )
        await platform.advance((retries + 1) * (timeout + 60) + 60)
        return await platform.run(run["id"]), await platform.events(run["id"])


@settings(max_examples=25, deadline=None)
@given(
    epochs=st.integers(1, 6),
    cost=st.integers(1, 4000),
    timeout=st.integers(1, 10_000),
    retries=st.integers(0, 4),
)
def test_the_retry_rule_holds_for_any_budget(
    epochs: int, cost: int, timeout: int, retries: int
) -> None:
    run, events = asyncio.run(story(epochs, cost, timeout, retries))
    per_attempt = timeout // cost
    finishes = per_attempt >= 1 and per_attempt * (retries + 1) >= epochs

    assert run["runtime_seconds"] <= timeout * (retries + 1)  # the invariant
    assert len(run["attempts"]) <= retries + 1
    assert legal(statuses(events)), statuses(events)
    assert run["status"] == ("completed" if finishes else "failed")
    if finishes:
        used = math.ceil(epochs / per_attempt)
        assert len(run["attempts"]) == used
        assert [a["outcome"] for a in run["attempts"]] == ["timed_out"] * (used - 1) + ["completed"]
        last = epochs - (used - 1) * per_attempt
        assert run["runtime_seconds"] == (used - 1) * timeout + last * cost
        assert run["metrics"]["epochs_completed"] == epochs
    else:
        assert [a["outcome"] for a in run["attempts"]] == ["timed_out"] * (retries + 1)
        assert run["runtime_seconds"] == timeout * (retries + 1)
    for attempt in run["attempts"]:
        span = parse_time(attempt["ended_at"]) - parse_time(attempt["started_at"])
        assert span <= timeout
