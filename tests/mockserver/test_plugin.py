"""The pytest plugin as a user's test suite meets it: fixtures, marker, assertions, target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mockserver
from mockserver.app import create_app
from mockserver.backend import PlatformBackend
from mockserver.settings import Settings
from mockserver.testing.assertions import (
    assert_attempts,
    assert_statuses,
    assert_webhooks_match_timeline,
)
from mockserver.testing.servers import serve_in_thread
from qcog_types.pytorch_models.hyperparameters import GeneralHSModelHyperparameters
from trainer.synthetic import TARGET

HOUR = 3600


def hyperparameters() -> GeneralHSModelHyperparameters:
    return GeneralHSModelHyperparameters(
        hsm_model="general", epochs=4, batch_size=64, target=TARGET, input_operator_count=8,
        output_operator_count=1, hilbert_space_dims=2,
        optimizer_config={"type": "Adam", "default_params": {"lr": 0.02}},
        loss_fn_config={"type": "MSELoss"},
    )  # fmt: skip


@pytest.mark.qcog(
    clock="manual",
    start_time="2030-06-01T00:00:00Z",
    faults=[{"type": "crash", "attempt": 1, "epoch": 2, "message": "spot instance reclaimed"}],
)
async def test_a_users_test_with_the_fixtures(
    qcog_platform, qcog_client, qcog_clock, qcog_dataset, make_webhook_receiver
) -> None:
    receiver = make_webhook_receiver(qcog_platform.backend.webhooks.secret)
    await qcog_dataset("training", features=8)
    submitted = await qcog_client.run_experiment(
        "job", experiment_name="pytorch-models", dataset_name="training", instance="cpu",
        parameters={"hyperparameters": hyperparameters(), "timeout": HOUR, "retries": 1},
        local_webhook_url=receiver.url,
    )  # fmt: skip
    run_id = submitted["response"]["run_id"]
    await qcog_clock.advance(seconds=6 * HOUR)
    run = (await qcog_client.get_experiment_run("job"))["response"]
    events = await qcog_clock.events(run_id)

    assert run["created_at"] == "2030-06-01T00:00:00Z"  # the marker's start time
    assert_attempts(run, ["crashed", "completed"], events)
    assert "spot instance reclaimed" in run["attempts"][0]["reason"]  # the marker's fault plan
    assert_statuses(events, ["pending", "running", "pending", "running", "completed"])
    assert_webhooks_match_timeline(receiver, events, run_id)
    assert receiver.wait_for("run.completed", run_id=run_id)["data"]["run"]["status"] == "completed"


async def test_the_socket_platform_is_real_and_reset_per_test_1(qcog_socket_platform) -> None:
    assert qcog_socket_platform.base_url.startswith("http://127.0.0.1:")
    async with qcog_socket_platform.client() as client:
        assert (await client.project_client.list_datasets())["response"] == []
        from trainer.synthetic import synthetic_panel

        frame = synthetic_panel(dates=1, assets=20, features=3)
        assert "response" in await client.project_client.upload_dataset(frame, "left-behind")


async def test_the_socket_platform_is_real_and_reset_per_test_2(qcog_socket_platform) -> None:
    async with qcog_socket_platform.client() as client:
        assert (await client.project_client.list_datasets())["response"] == []


def test_assertion_messages_read_like_the_story() -> None:
    run = {"name": "job", "attempts": [{"outcome": "timed_out"}, {"outcome": "completed"}]}
    events = [
        {"time": "2026-01-01T00:00:05Z", "type": "attempt.started", "attempt": 1},
        {"time": "2026-01-01T01:00:05Z", "type": "attempt.timed_out", "attempt": 1},
    ]
    with pytest.raises(AssertionError) as caught:
        assert_attempts(run, ["completed"], events)
    message = str(caught.value)
    assert "Attempt outcomes of run 'job' differ" in message
    assert (
        "expected: ['completed']" in message and "actual:   ['timed_out', 'completed']" in message
    )
    assert "2026-01-01T01:00:05Z  attempt.timed_out  (attempt 1)" in message
    with pytest.raises(AssertionError, match="Status sequence differs"):
        assert_statuses(events, ["pending"])


def test_qcog_target_runs_the_same_tests_elsewhere_and_skips_emulator_only_ones(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import pytest

        async def test_whoami(qcog_client):
            assert (await qcog_client.project_client.whoami())["response"]["project_id"]

        async def test_clock(qcog_clock):
            await qcog_clock.advance(seconds=1)

        @pytest.mark.qcog_emulator_only
        def test_emulator_only():
            pass
        """
    )
    backend = PlatformBackend(Settings(api_key="elsewhere-key"))
    monkeypatch.setenv("QCOG_API_KEY", "elsewhere-key")
    try:
        with serve_in_thread(create_app(backend)) as url:
            result = pytester.runpytest_inprocess(
                f"--qcog-target={url}/api", "-p", "no:cacheprovider",
                "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
            )  # fmt: skip
    finally:
        backend.close()
    result.assert_outcomes(passed=1, skipped=2)


def test_only_the_test_harness_imports_the_client() -> None:
    package = Path(mockserver.__file__).parent
    importers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(from|import) client\b", path.read_text(), flags=re.MULTILINE)
    ]
    assert importers and all(name.startswith("testing/") for name in importers), importers
