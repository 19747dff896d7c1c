"""Fault plans, per run and server-wide: each fault acts on cue and shows in the timeline."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.faults import FaultPlan, WebhookFault, WebhookFaultType, parse_faults
from qcog_mock.mockserver.platform import Platform as Emulator
from tests.mockserver.helpers import Platform

HOUR = 3600


def faults_in(events: list[dict[str, Any]]) -> list[str]:
    return [e["fault"]["type"] for e in events if e["type"] == "fault.injected"]


async def submit(
    platform: Platform, faults: list[dict[str, Any]], url: str | None = None, **params: Any
):
    dataset = await platform.dataset_id()
    body = platform.run_body(dataset, emulator={"epoch_seconds": 600, "faults": faults}, **params)
    query = {"local_webhook_url": url} if url else {}
    response = await platform.client.post(
        f"{platform.project}/experiment_runs", json=body, params=query
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.torch
async def test_a_hung_attempt_times_out_and_the_next_resumes(platform: Platform) -> None:
    run = await submit(
        platform, [{"type": "hang", "attempt": 1, "epoch": 3}], timeout=HOUR, retries=1
    )
    await platform.advance(6 * HOUR)
    run = await platform.run(run["id"])
    first, second = run["attempts"]
    assert (first["outcome"], first["epochs_completed"]) == ("timed_out", 2)
    assert parse_time(first["ended_at"]) - parse_time(first["started_at"]) == HOUR
    assert (second["outcome"], second["resumed_from_epoch"]) == ("completed", 2)
    assert faults_in(await platform.events(run["id"])) == ["hang"]


@pytest.mark.torch
async def test_slow_epochs_cost_more_from_their_epoch_on(platform: Platform) -> None:
    run = await submit(platform, [{"type": "slow", "from_epoch": 4, "epoch_seconds": 1800}])
    await platform.advance(24 * HOUR)
    events = await platform.events(run["id"])
    times = [parse_time(e["time"]) for e in events if e["type"] == "checkpoint.saved"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == [600, 600, 1800, 1800, 1800]
    assert faults_in(events) == ["slow"]


async def test_webhooks_down_for_the_first_hours_then_delivered(
    platform: Platform, backend: Emulator, make_webhook_receiver
) -> None:
    receiver = make_webhook_receiver(backend.webhooks.secret)
    faults = [{"type": "webhook_down", "seconds": 2 * HOUR, "status": 502}]
    run = await submit(platform, faults, receiver.url)
    await platform.advance(24 * HOUR)
    events = await platform.events(run["id"])
    expected = [
        e["type"] for e in events if e["type"] not in ("checkpoint.saved", "fault.injected")
    ]
    assert sorted(receiver.types(run["id"])) == sorted(expected)
    deliveries = (await platform.client.get("/_emulator/webhooks/deliveries")).json()
    failed = [a for d in deliveries for a in d["attempts"] if not a["ok"]]
    assert failed and all(a["status_code"] == 502 for a in failed)
    submitted = parse_time(run["created_at"])
    assert all(parse_time(a["simulated_at"]) - submitted < 2 * HOUR for a in failed)
    assert "webhook_down" in faults_in(events)


@pytest.mark.torch
async def test_duplicate_timeout_and_delayed_webhooks(
    platform: Platform, backend: Emulator, make_webhook_receiver
) -> None:
    receiver = make_webhook_receiver(backend.webhooks.secret)
    faults = [
        {"type": "webhook_duplicate", "first": 2},
        {"type": "webhook_timeout", "first": 1},
        {"type": "webhook_delay", "first": 1, "delay_seconds": 60},
    ]
    run = await submit(platform, faults, receiver.url)
    await platform.advance(24 * HOUR)
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    events = [e["id"] for e in receiver.events]
    assert ids.count(events[-1]) == 1
    duplicated = [i for i in set(ids) if ids.count(i) == 2]
    assert len(duplicated) == 2  # the first two messages came twice
    assert receiver.types(run["id"])[0] != "run.created"  # held back 60 s: overtaken
    timeline = await platform.events(run["id"])
    assert sorted(set(faults_in(timeline))) == [
        "webhook_delay",
        "webhook_duplicate",
        "webhook_timeout",
    ]
    deliveries = (await platform.client.get("/_emulator/webhooks/deliveries")).json()
    timed_out = [
        a for d in deliveries for a in d["attempts"] if a["error"] and "timeout" in a["error"]
    ]
    assert len(timed_out) == 1


@pytest.mark.torch
async def test_server_wide_fault_plans_are_validated_and_apply_to_every_run(
    platform: Platform,
) -> None:
    bad = await platform.client.put(
        "/_emulator/faults", json=[{"type": "crash", "attempt": 0, "epoch": 1}]
    )
    assert bad.status_code == 422 and "faults.0" in bad.json()["detail"]
    plan = [{"type": "crash", "attempt": 1, "epoch": 2, "message": "rack power"}]
    assert (await platform.client.put("/_emulator/faults", json=plan)).json()[0][
        "message"
    ] == "rack power"
    assert (await platform.client.get("/_emulator/faults")).json() == [
        {"type": "crash", "attempt": 1, "epoch": 2, "message": "rack power"}
    ]
    run = await submit(platform, [], retries=1)
    await platform.advance(24 * HOUR)
    run = await platform.run(run["id"])
    assert [a["outcome"] for a in run["attempts"]] == ["crashed", "completed"]
    assert "rack power" in run["attempts"][0]["reason"]
    assert (await platform.client.delete("/_emulator/faults")).json() == []


async def test_bad_run_faults_are_rejected_at_submission(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    body = platform.run_body(dataset, emulator={"faults": [{"type": "slow", "from_epoch": 2}]})
    response = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert response.status_code == 422 and "epoch_seconds" in response.json()["detail"]


def test_the_plan_decides_which_webhook_fault_is_in_force() -> None:
    plan = FaultPlan.of(
        parse_faults([{"type": "webhook_down", "first": 2, "status": 500}]),
        parse_faults([
            {"type": "webhook_down", "seconds": 60},
            {"type": "webhook_delay", "first": 1, "delay_seconds": 30},
        ]),
    )  # fmt: skip
    counted: list[int] = []

    def in_force(kind: WebhookFaultType, age: float, count: int) -> WebhookFault | None:
        return plan.webhook(kind, age=age, count=lambda: counted.append(count) or count)

    # The run's own fault first; it holds while fewer than `first` were counted.
    assert getattr(in_force("webhook_down", age=120, count=1), "status", None) == 500
    # Counted out: the server-wide one holds within its seconds of the submission only.
    assert getattr(in_force("webhook_down", age=30, count=2), "seconds", None) == 60
    assert in_force("webhook_down", age=60, count=2) is None
    assert in_force("webhook_timeout", age=0, count=0) is None  # none of that kind
    counted.clear()
    assert getattr(in_force("webhook_delay", age=0, count=0), "delay_seconds", None) == 30
    assert counted == [0]  # counted (a store read) only for a fault that counts
    assert FaultPlan().webhook("webhook_delay", age=0, count=lambda: 0) is None
