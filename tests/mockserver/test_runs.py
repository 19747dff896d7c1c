"""Runs, attempts and the retry-extension rule, through HTTP against the real app."""

from __future__ import annotations

from typing import Any

import pytest

from qcog_mock.mockserver import costmodel
from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.testing.assertions import statuses
from qcog_mock.trainer.hyperparameters import parse_hyperparameters
from tests.mockserver.helpers import Platform, dataset_csv, hyperparameters, outcomes

pytestmark = pytest.mark.torch  # every test here trains

EPOCH = 25 * 60  # 25-minute epochs
HOUR = 3600
TIMINGS = {"total_training_time", "avg_epoch_time"}
FINAL_METRICS = (
    "test_loss", "best_val_loss", "final_train_loss", "final_val_loss", "epochs_completed",
    "train_dataset_size", "val_dataset_size", "total_training_time", "avg_epoch_time",
    "train_loss_history", "val_loss_history", "checkpoint_metrics",
)  # fmt: skip


def emulator(**extra: Any) -> dict[str, Any]:
    return {"epoch_seconds": EPOCH, **extra}


@pytest.mark.parametrize(
    ("retries", "status", "attempts", "checkpoints"),
    [
        # 2 epochs fit in an hour; the third is cut at the deadline. 3 attempts × 2 = 6 epochs.
        (2, "completed", ["timed_out", "timed_out", "completed"], 6),
        (1, "failed", ["timed_out", "timed_out"], 4),
        (0, "failed", ["timed_out"], 2),
        (5, "completed", ["timed_out", "timed_out", "completed"], 6),
    ],
)
async def test_retry_table(
    platform: Platform, retries: int, status: str, attempts: list[str], checkpoints: int
) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, timeout=HOUR, retries=retries, emulator=emulator())
    await platform.advance(48 * HOUR)
    run = await platform.run(run["id"])

    assert run["status"] == status
    assert outcomes(run) == attempts
    assert run["max_attempts"] == retries + 1
    listed = (
        await platform.client.get(f"{platform.project}/experiment_runs/{run['id']}/checkpoints")
    ).json()
    assert [c["epoch"] for c in listed] == list(range(1, checkpoints + 1))
    # Each timed-out attempt ran exactly the timeout and lost its partial third epoch.
    for attempt in run["attempts"]:
        span = parse_time(attempt["ended_at"]) - parse_time(attempt["started_at"])
        if attempt["outcome"] == "timed_out":
            assert span == HOUR and attempt["epochs_completed"] == 2
    assert [a["resumed_from_epoch"] for a in run["attempts"]] == [
        2 * i for i in range(len(attempts))
    ]
    assert run["runtime_seconds"] <= run["runtime_limit_seconds"] == HOUR * (retries + 1)
    if status == "completed":
        assert run["metrics"]["epochs_completed"] == 6
        assert "error" not in run  # only a failed run has one
        assert run["runtime_seconds"] == 2 * HOUR + 2 * EPOCH
    else:
        assert run["error"] == run["errors"][-1]
        assert "Retries exhausted" in run["error"]
        assert f"retries={retries}" in run["error"]
        assert any(
            f"Attempt {len(attempts)} of {len(attempts)} timed out" in e for e in run["errors"]
        )
        assert run["metrics"]["error"] == run["error"]
        assert run["metrics"]["epoch"] == checkpoints  # the live metrics of the last epoch


async def test_status_sequence_returns_to_pending_between_attempts(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, timeout=HOUR, retries=2, emulator=emulator())
    await platform.advance(10 * HOUR)
    events = await platform.events(run["id"])
    assert statuses(events) == [
        "pending",
        "running",
        "pending",
        "running",
        "pending",
        "running",
        "completed",
    ]
    types = [e["type"] for e in events if e["type"].startswith("attempt.")]
    assert types == [
        "attempt.started", "attempt.timed_out",
        "attempt.started", "attempt.timed_out",
        "attempt.started", "attempt.completed",
    ]  # fmt: skip
    times = [e["time"] for e in events]
    assert times == sorted(times)


async def test_a_retried_run_ends_exactly_like_one_that_never_timed_out(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    hp = hyperparameters(
        epochs=6,
        scheduler_config={"type": "StepLR", "params": {"step_size": 2, "gamma": 0.5}},
        early_stopping_config={"monitor": "val_loss", "patience": 10},
    )
    params = {"hyperparameters": hp, "emulator": emulator()}
    whole = await platform.submit(dataset, "whole", timeout=24 * HOUR, **params)
    split = await platform.submit(dataset, "split", timeout=HOUR, retries=2, **params)
    await platform.advance(24 * HOUR)
    whole, split = await platform.run(whole["id"]), await platform.run(split["id"])
    assert outcomes(whole) == ["completed"]
    assert outcomes(split) == ["timed_out", "timed_out", "completed"]
    strip = lambda m: {k: v for k, v in m.items() if k not in TIMINGS}  # noqa: E731
    assert strip(split["metrics"]) == strip(whole["metrics"])


async def test_early_stopping_finishes_inside_the_first_attempt(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    hp = hyperparameters(
        epochs=50,
        optimizer_config={"type": "SGD", "default_params": {"lr": 0.5}},
        early_stopping_config={"monitor": "val_loss", "patience": 1, "min_delta": 0.0},
    )
    run = await platform.submit(
        dataset, hyperparameters=hp, timeout=24 * HOUR, retries=3, emulator=emulator()
    )
    await platform.advance(48 * HOUR)
    run = await platform.run(run["id"])
    assert run["status"] == "completed"
    assert outcomes(run) == ["completed"]
    assert run["metrics"]["epochs_completed"] < 50
    assert run["attempts"][0]["epochs_completed"] == run["metrics"]["epochs_completed"]


async def test_a_crash_in_attempt_one_is_resumed_by_attempt_two(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    faults = [{"type": "crash", "attempt": 1, "epoch": 3, "message": "node lost"}]
    run = await platform.submit(
        dataset, timeout=24 * HOUR, retries=1, emulator=emulator(faults=faults)
    )
    await platform.advance(48 * HOUR)
    run = await platform.run(run["id"])
    assert run["status"] == "completed"
    assert outcomes(run) == ["crashed", "completed"]
    first, second = run["attempts"]
    assert "crashed at epoch 3: InjectedCrash: node lost" in first["reason"]
    assert first["epochs_completed"] == 2 and second["resumed_from_epoch"] == 2
    assert second["epochs_completed"] == 4
    assert "Attempt 1 of 2 crashed at epoch 3" in run["errors"][0]
    assert run["metrics"]["epochs_completed"] == 6


async def test_a_crash_on_the_last_attempt_fails_the_run(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    faults = [{"type": "crash", "attempt": 1, "epoch": 2}]
    run = await platform.submit(dataset, retries=0, emulator=emulator(faults=faults))
    await platform.advance(48 * HOUR)
    run = await platform.run(run["id"])
    assert (run["status"], outcomes(run)) == ("failed", ["crashed"])
    assert "injected crash" in run["error"] and "Retries exhausted" in run["error"]


async def test_a_data_error_fails_at_once_without_consuming_retries(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    hp = hyperparameters(targets="no_such_column")
    run = await platform.submit(dataset, hyperparameters=hp, retries=3, emulator=emulator())
    await platform.advance(HOUR)
    run = await platform.run(run["id"])
    assert run["status"] == "failed"
    assert outcomes(run) == ["crashed"]
    assert "would repeat on every attempt" in run["error"]
    assert "Target column(s) ['no_such_column'] not found" in run["error"]


async def test_operator_count_mismatch_fails_at_once_with_the_public_message(
    platform: Platform,
) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(
        dataset, hyperparameters=hyperparameters(input_operator_count=7), retries=2
    )
    await platform.advance(HOUR)
    run = await platform.run(run["id"])
    assert run["status"] == "failed" and len(run["attempts"]) == 1
    assert (
        "Input operator count (feature dimension) mismatch: Hyperparameters: 7 != Data: 4"
        in run["error"]
    )


async def test_live_metrics_while_running_and_final_metrics_when_completed(
    platform: Platform,
) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, emulator=emulator())
    assert run["status"] == "pending" and run["metrics"] is None
    await platform.advance(5 + 2 * EPOCH + 1)  # start delay, then two epochs
    live = await platform.run(run["id"])
    assert live["status"] == "running"
    assert live["current_attempt"] == 1
    assert live["metrics"]["epoch"] == 2 and live["metrics"]["epochs"] == 6
    assert len(live["metrics"]["val_loss_history"]) == 2
    assert live["runtime_seconds"] == 2 * EPOCH + 1
    await platform.advance(10 * HOUR)
    done = await platform.run(run["id"])
    assert done["status"] == "completed"
    assert set(FINAL_METRICS) <= set(done["metrics"])
    assert done["metrics"]["val_loss_history"][:2] == live["metrics"]["val_loss_history"]


async def test_the_cost_model_prices_epochs_without_an_override(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, cpu_count=2)
    await platform.advance(HOUR)
    run = await platform.run(run["id"])
    events = [e for e in await platform.events(run["id"]) if e["type"] == "checkpoint.saved"]
    cost = costmodel.epoch_seconds(parse_hyperparameters(hyperparameters()), rows=60, cpu_count=2)
    elapsed = parse_time(events[-1]["time"]) - parse_time(run["attempts"][0]["started_at"])
    assert elapsed == pytest.approx(6 * cost, abs=1e-3)  # times are kept to the millisecond


async def test_concurrent_runs_interleave_in_simulated_time_order(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    slow = await platform.submit(dataset, "slow", emulator={"epoch_seconds": 300})
    fast = await platform.submit(dataset, "fast", emulator={"epoch_seconds": 200})
    await platform.advance(HOUR)
    events = [e for e in await platform.events() if e["type"] == "checkpoint.saved"]
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    order = [e["run_name"] for e in events][:5]
    # fast ends epochs at 205, 405, 605 s; slow at 305, 605 s: at 605 s the earlier run goes first.
    assert order == ["fast", "slow", "fast", "slow", "fast"]
    assert (await platform.run(slow["id"]))["status"] == "completed"
    assert (await platform.run(fast["id"]))["status"] == "completed"


async def test_same_submissions_give_the_same_timeline_and_metrics(
    platform: Platform, backend
) -> None:
    async def story() -> tuple[list[tuple[str, str, Any]], dict[str, Any]]:
        dataset = await platform.dataset_id("d", dataset_csv(seed=5))
        faults = [{"type": "crash", "attempt": 2, "epoch": 4}]
        run = await platform.submit(
            dataset, timeout=HOUR, retries=3, emulator=emulator(faults=faults)
        )
        await platform.advance(12 * HOUR)
        timeline = [(e["time"], e["type"], e.get("attempt")) for e in await platform.events()]
        metrics = (await platform.run(run["id"]))["metrics"]
        return timeline, {k: v for k, v in metrics.items() if k not in TIMINGS}

    first = await story()
    assert (await platform.client.post("/_emulator/reset")).status_code == 200
    await platform.setup()
    second = await story()
    assert first == second


@pytest.mark.parametrize("settings_overrides", [{"clock": "auto"}])
async def test_auto_mode_runs_to_the_end_on_its_own_with_the_manual_timeline(
    platform: Platform,
) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, timeout=HOUR, retries=2, emulator=emulator())
    await platform.settle()
    run = await platform.run(run["id"])
    assert outcomes(run) == ["timed_out", "timed_out", "completed"]
    events = await platform.events(run["id"])
    assert statuses(events)[-1] == "completed"
    # The same times as in manual mode: start 5 s after submission, 30 s between attempts.
    starts = [a["started_at"] for a in run["attempts"]]
    assert starts == ["2026-01-01T00:00:05Z", "2026-01-01T01:00:35Z", "2026-01-01T02:01:05Z"]
    clock = (await platform.client.get("/_emulator/clock")).json()
    assert clock["now"] == run["attempts"][-1]["ended_at"]


async def test_deleting_a_running_run_stops_it_first(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, emulator=emulator())
    await platform.advance(5 + EPOCH + 10)
    response = await platform.client.delete(f"{platform.project}/experiment_runs/{run['id']}")
    assert response.status_code == 200
    assert response.json()["deleted"] is True and response.json()["status_before"] == "running"
    events = await platform.events(run["id"])
    assert [e["type"] for e in events][-2:] == ["attempt.cancelled", "run.deleted"]
    missing = await platform.client.get(f"{platform.project}/experiment_runs/{run['id']}")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    await platform.advance(10 * HOUR)  # nothing left to run
    assert [e["type"] for e in await platform.events(run["id"])][-1] == "run.deleted"


async def test_deleting_a_pending_run_cancels_its_start(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, emulator=emulator())
    response = await platform.client.delete(
        f"{platform.project}/experiment_runs/job", params={"identifier": "name"}
    )
    assert response.status_code == 200 and response.json()["status_before"] == "pending"
    await platform.advance(HOUR)
    types = [e["type"] for e in await platform.events(run["id"])]
    assert "attempt.started" not in types and types[-1] == "run.deleted"


async def test_override_replaces_a_same_named_run(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    first = await platform.submit(dataset, emulator=emulator())
    duplicate = await platform.client.post(
        f"{platform.project}/experiment_runs", json=platform.run_body(dataset)
    )
    assert duplicate.status_code == 409 and "override=True" in duplicate.json()["detail"]
    body = {**platform.run_body(dataset), "override": True}
    second = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert second.status_code == 201 and second.json()["id"] != first["id"]
    named = await platform.client.get(
        f"{platform.project}/experiment_runs/job", params={"identifier": "name"}
    )
    assert named.json()["id"] == second.json()["id"]


@pytest.mark.parametrize("settings_overrides", [{"epoch_seconds": 700.0}])
async def test_the_server_epoch_cost_applies_unless_a_run_overrides_it(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    server_priced = await platform.submit(dataset, "server")
    run_priced = await platform.submit(dataset, "run", emulator={"epoch_seconds": 100})
    await platform.advance(24 * HOUR)
    for run_id, cost in ((server_priced["id"], 700), (run_priced["id"], 100)):
        run = await platform.run(run_id)
        started = parse_time(run["attempts"][0]["started_at"])
        assert parse_time(run["attempts"][0]["ended_at"]) - started == 6 * cost
